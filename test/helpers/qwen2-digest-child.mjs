// Prints a sha256 of the Qwen2 policy's losses and both gradient sets for a fixed tiny
// model and batch (concat and max pooling, so every path runs). Run under different
// CRAFTGRAD_THREADS / CRAFTGRAD_CPU_ISA values by qwen2-determinism.test.mjs.
import { createHash } from 'node:crypto';
import { backendInfo } from '../../dist/index.js';
import { tinyDir, tinyPolicy } from './qwen2-setup.mjs';

// Wide enough that the products split over threads: D=64, MLP 128, 4 layers, T=24.
const written = tinyDir({}, { seed: 5 });
const { policy, batch } = await tinyPolicy(written, { pooling: process.argv[2] ?? 'max', prefixTokens: 12, promptTokens: 6, chunk: 6, rank: 8 }, { seed: 9, batchSize: 3 });
const gAct = policy.newGradSet(), gRet = policy.newGradSet();
const r = policy.craftStep(batch, gAct, gRet);
const h = createHash('sha256');
for (const g of [gAct.data, gRet.data]) h.update(Buffer.from(g.buffer, g.byteOffset, g.byteLength));
h.update(`${r.actionLoss} ${r.retentionLoss}`);
const info = backendInfo().cpu;
console.log(JSON.stringify({ digest: h.digest('hex'), isa: info.isa, threads: info.threads }));
