// The optimizer-step table shared by the CPU benchmark (bench/optimizer.js) and its GPU
// section (bench/optimizer-cuda.js): the variants, the bytes each moves per element, and
// their times against the floor.

/** Bytes each variant must move per element, for its achieved bandwidth. */
export const BYTES_PER_ELEMENT = { fused: 40, pass2: 32, reduce: 8, unfused: 40, surgery: 12, adamw: 28 };

const ROWS = [
  ['**fused**: pass 1 (craftReduce) + pass 2 + AdamW', 'fused'],
  ['fused pass 2 + AdamW alone', 'pass2'],
  ['pass 1 alone (craftReduce)', 'reduce'],
  ['**unfused**: surgery into a buffer + AdamW', 'unfused'],
  ['surgery alone', 'surgery'],
  ['AdamW alone', 'adamw'],
];

/**
 * The markdown table. `med`, `best` and `floorMs` in milliseconds; `n` elements;
 * `msDigits` and `gbDigits` the decimals of the time and bandwidth columns.
 */
export function optimizerTable({ med, best, floorMs, n, msDigits, gbDigits }) {
  const ms = (t) => t.toFixed(msDigits);
  const x = (t) => (t / floorMs).toFixed(2);
  const gbs = (k) => ((BYTES_PER_ELEMENT[k] * n) / (med[k] * 1e-3) / 1e9).toFixed(gbDigits);
  return [
    '| step | B/elem moved | median ms | × floor | best ms | × floor | achieved GB/s (median) |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...ROWS.map(([label, k]) => `| ${label} | ${BYTES_PER_ELEMENT[k]} | ${ms(med[k])} | ${x(med[k])}× | ${ms(best[k])} | ${x(best[k])}× | ${gbs(k)} |`),
  ].join('\n');
}
