#!/usr/bin/env node
// Static resource report of the CUDA kernels: per kernel and SM version, the registers
// ptxas gave it, the CTAs of its declared block size that fit on one SM and the occupancy
// that makes, spills, and its 16-byte global accesses. Needs nvcc, not a GPU.
//   node scripts/cuda-resources/report.js [--sm 90] [--json]
// native/cuda/README.md keeps the table; test/cuda-resources.test.mjs checks the rules.
import { compileKernels, findNvcc } from './ptxas.js';
import { residency } from './occupancy.js';

/** One row per kernel, with residency computed for each SM version. */
export async function kernelReport(opts = {}) {
  const nvcc = opts.nvcc ?? findNvcc();
  if (!nvcc) throw new Error('cuda-resources: no nvcc found (set CUDACXX or put nvcc on PATH)');
  const { sms, kernels } = await compileKernels({ nvcc, sms: opts.sms });
  for (const k of kernels) {
    for (const sm of sms) {
      const u = k.perSm[sm];
      if (u && k.threads) Object.assign(u, residency({ threads: k.threads, registers: u.registers, sharedBytes: u.sharedBytes }, sm));
    }
  }
  return { sms, kernels };
}

export function markdownTable({ sms, kernels }) {
  const head = ['kernel', 'file', 'threads', 'smem B', ...sms.map((sm) => `sm_${sm}: regs, CTAs/SM, occupancy`), 'spill B'];
  const rows = kernels.map((k) => {
    const spill = Math.max(0, ...sms.map((sm) => (k.perSm[sm]?.spillStores ?? 0) + (k.perSm[sm]?.spillLoads ?? 0)));
    const smem = Math.max(0, ...sms.map((sm) => k.perSm[sm]?.sharedBytes ?? 0));
    return [
      `\`${k.name}\``,
      k.file,
      k.threads ?? '(none declared)',
      smem,
      ...sms.map((sm) => {
        const u = k.perSm[sm];
        if (!u) return '(not compiled)';
        return u.ctas === undefined ? `${u.registers}` : `${u.registers}, ${u.ctas}, ${Math.round(100 * u.occupancy)}%`;
      }),
      spill,
    ];
  });
  return [head, head.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const smArg = args.indexOf('--sm');
  const sms = smArg >= 0 ? args[smArg + 1].split(',').map(Number) : undefined;
  try {
    const report = await kernelReport({ sms });
    console.log(args.includes('--json') ? JSON.stringify(report, null, 2) : markdownTable(report));
  } catch (e) {
    console.error(e.message);
    process.exitCode = 1;
  }
}
