// How bench/model.js states the matrix products against the fp32 peak. A peak that was
// not measured (0 from a build or ISA without a probe, NaN, Infinity) gives "not
// measured" everywhere, never a percentage and never a target reported as met.

/** True when `peak` (GFLOP/s) is a real measurement. */
export function peakMeasured(peak) {
  return Number.isFinite(peak) && peak > 0;
}

/** `gflops` as a percentage of `peak`, or 'not measured'. */
export function ofPeak(gflops, peak) {
  return peakMeasured(peak) && Number.isFinite(gflops) ? `${(100 * gflops / peak).toFixed(0)}%` : 'not measured';
}

/**
 * The verdict on "every matrix product reaches `target` of the fp32 peak" for rows of
 * { label, gflops }: met, not met (naming the products), or not measured.
 */
export function peakTargetVerdict(rows, peak, target = 0.4) {
  const goal = `matrix products >= ${(100 * target).toFixed(0)}% of the fp32 peak`;
  if (!peakMeasured(peak)) return `${goal}: not measured (no valid fp32 peak: ${peak} GFLOP/s).`;
  const below = rows.filter((g) => !(g.gflops / peak >= target)).map((g) => g.label.trim().replace(/\s+/g, ' '));
  return `${goal}: ${below.length === 0 ? 'met by every product' : `not met by ${below.join('; ')}`}.`;
}
