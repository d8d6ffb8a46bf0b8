import { createHash } from 'node:crypto';
import { canonicalJson, type JsonValue } from './json.js';

/**
 * The bounds op-dbus puts on what it reads from documents, the command line and APIs, and on what
 * it writes into messages and the audit log. docs/security.md lists them with their reasons.
 *
 * A document (or any input) over a limit is refused before the work it would cost, with
 * `OPDBUS_ERR_LIMIT_EXCEEDED` (or, for nesting, `OPDBUS_ERR_STATE_PARSE`) naming the limit.
 */
export const limits = {
  /** Bytes of a state document (YAML or JSON text). */
  documentBytes: 4 * 1024 * 1024,
  /**
   * Collection items of a state document, counted from its text before it is parsed (lines plus
   * flow separators: an upper bound of the items it can hold).
   */
  documentItems: 200_000,
  /** Nesting of mappings and sequences in a document. */
  documentDepth: 64,
  /** Aliases a YAML document may expand (the yaml library's own guard against alias bombs). */
  documentAliases: 100,
  /** Bytes of one mapping key of a document. */
  keyBytes: 1024,
  /** Bytes of one string value of a document. */
  valueBytes: 1024 * 1024,
  /** Changes in one plan. */
  planChanges: 20_000,
  /** Bytes of one value (`before` / `after`) kept inline in an audit record; larger ones by hash. */
  auditValueBytes: 4096,
  /** Soft size of one audit record: above it, values are kept by hash to stay well under the ledger's entry limit. */
  auditRecordBytes: 4 * 1024 * 1024,
  /** Characters of a piece of input quoted in a message; longer ones are cut and named by hash. */
  messageQuote: 160,
  /** Characters of a change summary kept in an audit record. */
  summaryChars: 512,
} as const;

/** The limits, by name. */
export type Limits = typeof limits;

/** SHA-256 of a string's UTF-8 bytes, hex. */
function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/**
 * A piece of input made safe to quote in a message: at most `max` characters, control characters
 * escaped; longer input is cut and named by its size and a hash prefix, so that a message never
 * echoes unbounded input (`"xxxx…" (52428800 bytes, sha256 1f2e3d4c5b6a)`).
 */
export function quoteInput(text: string, max: number = limits.messageQuote): string {
  if (text.length <= max) return JSON.stringify(text);
  const bytes = Buffer.byteLength(text, 'utf8');
  return `${JSON.stringify(`${text.slice(0, max)}…`)} (${bytes} bytes, sha256 ${sha256Hex(text).slice(0, 12)})`;
}

/**
 * A JSON value quoted in a message as JSON, bounded like {@link quoteInput}:
 * `"abc"`, `[1,2]`, or `"xxxx…" (52428800 bytes, sha256 1f2e3d4c5b6a)`.
 */
export function quoteValue(value: unknown, max: number = limits.messageQuote): string {
  const text = JSON.stringify(value) ?? String(value);
  if (text.length <= max) return text;
  const bytes = Buffer.byteLength(text, 'utf8');
  return `${text.slice(0, max)}… (${bytes} bytes, sha256 ${sha256Hex(text).slice(0, 12)})`;
}

/** A value of an audit record that was too large to keep inline: its canonical JSON's hash and size. */
export interface HashedValue {
  [key: string]: JsonValue;
  /** `sha256:` and the hex SHA-256 of the value's RFC 8785 canonical JSON. */
  $hash: string;
  /** Bytes of that canonical JSON. */
  $bytes: number;
}

/** A value a plugin's redaction withheld (a secret); no hash, so that it cannot be guessed offline. */
export interface RedactedValue {
  [key: string]: JsonValue;
  $redacted: true;
}

/** The marker of a value withheld as secret. */
export const REDACTED: RedactedValue = Object.freeze({ $redacted: true });

/**
 * A JSON value bounded for an audit record: itself when its canonical JSON has at most
 * `maxBytes` bytes, else a {@link HashedValue}.
 */
export function boundedValue(value: JsonValue, maxBytes: number = limits.auditValueBytes): JsonValue {
  const text = canonicalJson(value);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes <= maxBytes) return value;
  return { $hash: `sha256:${sha256Hex(text)}`, $bytes: bytes };
}

/** A string cut to `max` characters (with `…`), for fields of records that are for people. */
export function clipText(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
