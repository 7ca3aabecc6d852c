/**
 * How one signal is stored: one document per strategy and symbol.
 *
 * `signal` holds the row's JSON text from core's `serializeSignalRow`, not a BSON sub-document.
 * Signals carry free-form extra fields, and a field named `$set` or `a.b` inside a sub-document is
 * refused or reinterpreted by the server as an operator or a path; as a string it is data. JSON
 * text also keeps every double bit-identical, with no BSON Int32/Int64/Double conversions.
 */
export interface SignalDocument {
  /** {@link signalDocumentId} of the key. */
  _id: string;
  strategyName: string;
  symbol: string;
  /** The row as JSON text. */
  signal: string;
  /** When the row was last written, by the writer's clock. */
  updatedAt: Date;
  /** Present only when written with `ttlMs`: when the row stops being readable. */
  expiresAt?: Date;
}

/**
 * The `_id` of a key's document: the JSON array `[strategyName, symbol]`. JSON quotes and escapes
 * both names, so `("a:b", "c")` and `("a", "b:c")` get different ids, and no name can end the
 * quoting early. Being a plain string, it is compared as data: a symbol such as `{"$gt": ""}`
 * never becomes a query operator.
 * @example signalDocumentId("BTC/USDT", "momentum") // '["momentum","BTC/USDT"]'
 */
export function signalDocumentId(symbol: string, strategyName: string): string {
  return JSON.stringify([strategyName, symbol]);
}
