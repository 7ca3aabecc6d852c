/**
 * The `p`-th percentile (0-100) of `values`, interpolated linearly between the two nearest ranks
 * (the method of numpy's default and R's type 7), so p50 of an even count is the mean of the two
 * middle values. Throws on an empty list: a percentile of nothing is a bug in the caller.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError("percentile of an empty list");
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0-100, got ${p}`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lower = Math.floor(rank);
  const upper = Math.ceil(rank);
  const low = sorted[lower] as number;
  const high = sorted[upper] as number;
  return low + (high - low) * (rank - lower);
}

/** The median of `values` (the 50th percentile). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/**
 * The median over rounds of `ours[i] / other[i]`. Both series come from the same rounds, where
 * every contender ran back to back, so a slow-down of the machine during one round affects both
 * sides of its ratio and cancels out. Rounds missing on either side are skipped; `undefined` when
 * no round has both.
 */
export function pairedRatio(
  ours: readonly (number | undefined)[],
  other: readonly (number | undefined)[],
): number | undefined {
  const ratios: number[] = [];
  for (let round = 0; round < Math.min(ours.length, other.length); round++) {
    const numerator = ours[round];
    const denominator = other[round];
    if (numerator === undefined || denominator === undefined || denominator === 0) continue;
    ratios.push(numerator / denominator);
  }
  return ratios.length === 0 ? undefined : median(ratios);
}
