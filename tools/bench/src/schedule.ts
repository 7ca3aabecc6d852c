/**
 * The order in which the contenders run in round `round`: the list rotated by one place per round
 * (A B C, B C A, C A B, A B C, ...). Every contender runs at every position equally often over a
 * multiple of `items.length` rounds, so a machine that slows down or speeds up during a round
 * does not always favour the same contender.
 */
export function roundOrder<T>(items: readonly T[], round: number): T[] {
  if (items.length === 0) return [];
  const shift = ((round % items.length) + items.length) % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}
