/**
 * A D-Bus variant: a value with its signature, e.g. `new Variant('t', 1024n)`. Variants arrive
 * in replies (`a{sv}` property maps, `v` arguments) and are passed where a method takes `v`.
 */
export class Variant<T = unknown> {
  /** The signature of the one complete type the value has, e.g. `s`, `a(ss)`. */
  readonly signature: string;
  /** The value. */
  readonly value: T;

  constructor(signature: string, value: T) {
    this.signature = signature;
    this.value = value;
  }
}

/** Shorthand for `new Variant(signature, value)`. */
export function variant<T>(signature: string, value: T): Variant<T> {
  return new Variant(signature, value);
}
