import { OpdbusError } from '@opdbus/core';

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Options of {@link JsonStreamParser}. */
export interface JsonStreamParserOptions {
  /** Largest single JSON value accepted, in bytes (default 512 MiB); a larger one is a protocol error. */
  maxValueBytes?: number;
}

/**
 * Splits a byte stream of concatenated JSON texts (what ovsdb-server sends: JSON-RPC messages
 * back to back, with no delimiter) into parsed values.
 *
 * Only the structure is scanned here — braces, brackets, strings and their escapes — so each
 * value is parsed exactly once, by `JSON.parse`, when its last byte arrives. Multi-byte UTF-8
 * sequences never contain ASCII bytes, so scanning bytes is safe. Top-level values must be
 * objects or arrays (JSON-RPC messages are objects); whitespace between them is skipped.
 */
export class JsonStreamParser {
  readonly #maxValueBytes: number;
  /** Bytes of the value in progress that arrived in earlier chunks. */
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #depth = 0;
  #inString = false;
  #escaped = false;

  constructor(options: JsonStreamParserOptions = {}) {
    this.#maxValueBytes = options.maxValueBytes ?? 512 * 1024 * 1024;
  }

  /** True when a value has started but not ended (bytes are buffered). */
  get partial(): boolean {
    return this.#depth > 0;
  }

  /**
   * Feed the next chunk; returns the values it completed, in order. Throws
   * `OPDBUS_ERR_OVSDB_PROTOCOL` on bytes that cannot start a value, on invalid JSON, or on a value
   * larger than `maxValueBytes`; the parser is reset then.
   */
  push(chunk: Uint8Array): unknown[] {
    const out: unknown[] = [];
    const n = chunk.length;
    let start = this.#depth > 0 ? 0 : -1;
    let depth = this.#depth;
    let inString = this.#inString;
    let escaped = this.#escaped;
    for (let i = 0; i < n; i++) {
      const c = chunk[i]!;
      if (depth === 0) {
        if (c === OPEN_BRACE || c === OPEN_BRACKET) {
          depth = 1;
          start = i;
        } else if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) {
          this.reset();
          throw new OpdbusError(
            'OPDBUS_ERR_OVSDB_PROTOCOL',
            `The peer sent byte 0x${c.toString(16).padStart(2, '0')} where a JSON-RPC message (a JSON object) should start; is this an OVSDB server?`,
            { data: { byte: c } },
          );
        }
        continue;
      }
      if (inString) {
        if (escaped) escaped = false;
        else if (c === BACKSLASH) escaped = true;
        else if (c === QUOTE) inString = false;
        continue;
      }
      if (c === QUOTE) inString = true;
      else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
      else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        if (--depth === 0) {
          out.push(this.#complete(chunk.subarray(start, i + 1)));
          start = -1;
        }
      }
    }
    if (depth > 0) {
      const rest = chunk.subarray(start);
      this.#pendingBytes += rest.length;
      if (this.#pendingBytes > this.#maxValueBytes) {
        this.reset();
        throw new OpdbusError(
          'OPDBUS_ERR_OVSDB_PROTOCOL',
          `A JSON value from the peer exceeds ${this.#maxValueBytes} bytes; raise maxMessageBytes if this is expected.`,
          { data: { maxValueBytes: this.#maxValueBytes } },
        );
      }
      // Copy: the caller may reuse the chunk's memory.
      this.#pending.push(Buffer.from(rest));
    }
    this.#depth = depth;
    this.#inString = inString;
    this.#escaped = escaped;
    return out;
  }

  /** Drop any partial value (after a reconnect). */
  reset(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#depth = 0;
    this.#inString = false;
    this.#escaped = false;
  }

  #complete(tail: Uint8Array): unknown {
    let bytes: Buffer;
    if (this.#pending.length === 0) {
      bytes = Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
    } else {
      bytes = Buffer.concat([...this.#pending, tail]);
      this.#pending = [];
      this.#pendingBytes = 0;
    }
    if (bytes.length > this.#maxValueBytes) {
      this.reset();
      throw new OpdbusError(
        'OPDBUS_ERR_OVSDB_PROTOCOL',
        `A JSON value from the peer exceeds ${this.#maxValueBytes} bytes; raise maxMessageBytes if this is expected.`,
        { data: { maxValueBytes: this.#maxValueBytes } },
      );
    }
    const text = bytes.toString('utf8');
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      this.reset();
      throw new OpdbusError(
        'OPDBUS_ERR_OVSDB_PROTOCOL',
        `The peer sent invalid JSON (${(err as Error).message}): ${text.length > 200 ? `${text.slice(0, 200)}…` : text}`,
        { cause: err },
      );
    }
  }
}
