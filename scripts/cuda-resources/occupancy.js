// How many CTAs of a kernel fit on one SM, from its ptxas resource usage: the arithmetic of
// NVIDIA's occupancy calculator, with the per-SM limits of the CUDA C++ Programming Guide
// ("Technical Specifications per Compute Capability") for the architectures we build.
// Written here because no npm package carries these tables.

/** Per-SM limits by SM version (e.g. 90 for sm_90). */
export const SM_LIMITS = {
  75: { maxWarps: 32, maxCtas: 16, smemPerSm: 64 * 1024, smemReservedPerCta: 0, smemUnit: 256 },
  80: { maxWarps: 64, maxCtas: 32, smemPerSm: 164 * 1024, smemReservedPerCta: 1024, smemUnit: 128 },
  86: { maxWarps: 48, maxCtas: 16, smemPerSm: 100 * 1024, smemReservedPerCta: 1024, smemUnit: 128 },
  89: { maxWarps: 48, maxCtas: 24, smemPerSm: 100 * 1024, smemReservedPerCta: 1024, smemUnit: 128 },
  90: { maxWarps: 64, maxCtas: 32, smemPerSm: 228 * 1024, smemReservedPerCta: 1024, smemUnit: 128 },
};

// The same on every architecture above.
const REGS_PER_SM = 65536;
const REG_UNIT_PER_WARP = 256; // registers are allocated per warp, in units of 256
const MAX_REGS_PER_THREAD = 255;

const roundUp = (x, unit) => Math.ceil(x / unit) * unit;

/**
 * @param {{ threads: number, registers: number, sharedBytes: number }} kernel
 * @param {number} sm SM version, a key of SM_LIMITS
 * @returns {{ ctas: number, warps: number, occupancy: number, limitedBy: string }}
 *   CTAs resident per SM (0: the kernel cannot launch with this block size), their warps,
 *   warps over the SM's maximum, and which resource binds.
 */
export function residency({ threads, registers, sharedBytes }, sm) {
  const lim = SM_LIMITS[sm];
  if (!lim) throw new RangeError(`occupancy: no limits for sm_${sm} (known: ${Object.keys(SM_LIMITS).join(', ')})`);
  if (!(threads > 0 && threads <= 1024)) throw new RangeError(`occupancy: threads must be in 1..1024, got ${threads}`);
  if (!(registers >= 0 && registers <= MAX_REGS_PER_THREAD)) {
    throw new RangeError(`occupancy: registers must be in 0..${MAX_REGS_PER_THREAD}, got ${registers}`);
  }
  const warpsPerCta = Math.ceil(threads / 32);
  const regsPerWarp = roundUp(Math.max(registers, 1) * 32, REG_UNIT_PER_WARP);
  const byRegs = Math.floor(Math.floor(REGS_PER_SM / regsPerWarp) / warpsPerCta);
  const smemPerCta = roundUp(sharedBytes + lim.smemReservedPerCta, lim.smemUnit);
  const bySmem = sharedBytes === 0 ? Infinity : Math.floor(lim.smemPerSm / smemPerCta);
  const byWarps = Math.floor(lim.maxWarps / warpsPerCta);
  const candidates = [
    ['registers', byRegs],
    ['shared memory', bySmem],
    ['warps', byWarps],
    ['CTAs', lim.maxCtas],
  ];
  let [limitedBy, ctas] = candidates[0];
  for (const [name, n] of candidates) if (n < ctas) [limitedBy, ctas] = [name, n];
  return { ctas, warps: ctas * warpsPerCta, occupancy: (ctas * warpsPerCta) / lim.maxWarps, limitedBy };
}
