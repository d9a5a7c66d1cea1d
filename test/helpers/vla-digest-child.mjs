// Prints a sha256 of VLA-Adapter's losses and both gradient sets for a fixed tiny random
// model and batch (argv[2]: pooling). Run under different CRAFTGRAD_THREADS /
// CRAFTGRAD_CPU_ISA values by vla-determinism.test.mjs.
import { createHash } from 'node:crypto';
import { backendInfo } from '../../dist/index.js';
import { tinyVlaPolicy } from './vla-random.mjs';

const { policy, batch } = tinyVlaPolicy({ seed: 4, batch: 3, pooling: process.argv[2] ?? 'max' });
const gAct = policy.newGradSet(), gRet = policy.newGradSet();
const r = policy.craftStep(batch, gAct, gRet);
const h = createHash('sha256');
for (const g of [gAct.toFlat(), gRet.toFlat()]) h.update(Buffer.from(g.buffer, g.byteOffset, g.byteLength));
h.update(`${r.actionLoss} ${r.retentionLoss}`);
const info = backendInfo().cpu;
console.log(JSON.stringify({ digest: h.digest('hex'), isa: info.isa, threads: info.threads, loss: r.actionLoss }));
