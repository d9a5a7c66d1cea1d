// Prints a sha256 of everything surgery() returns for a fixed layout: outputs, dots,
// conflicts and gradNorm. Run under different CRAFTGRAD_THREADS / CRAFTGRAD_CPU_ISA
// values by the determinism test; any difference in any bit changes the digest.
import { createHash } from 'node:crypto';
import { surgery, backendInfo } from '../../dist/index.js';
import { gradPairs } from './random.mjs';

// Sizes that exercise every path: tails, many chunks, and one tensor large enough to be
// split over all threads (the cooperative path).
const sizes = [1, 17, 1025, 65537, 300001, 5000, 131072, 3, 0, 99999];
const { act, ret } = gradPairs(sizes, 42);
const r = surgery(act, ret, { lambda: 0.05, cosines: true });
const h = createHash('sha256');
for (const o of r.out) h.update(Buffer.from(o.buffer, o.byteOffset, o.byteLength));
for (const x of [r.dots, r.cosines, r.conflicts]) h.update(Buffer.from(x.buffer, x.byteOffset, x.byteLength));
h.update(String(r.gradNorm));
const info = backendInfo().cpu;
console.log(JSON.stringify({ digest: h.digest('hex'), isa: info.isa, threads: info.threads }));
