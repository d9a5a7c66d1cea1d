// Runs 1 + 8 async CRaFT steps of a built-in model with a workspace of about 136 MB and
// prints how much the peak RSS grew with the first step and with the eight after it.
import { AdapterPolicy } from '../../dist/model/index.js';

const m = AdapterPolicy.create({ tokens: 256, width: 512, blocks: 4, rank: 4, alpha: 8, headWidth: 64, chunk: 4, actionDims: 7 }, { seed: 1 });
const B = 16;
const batch = { tokens: new Float32Array(B * 256 * 512).fill(0.1), actions: new Float32Array(B * 28), size: B };
const rss = () => process.resourceUsage().maxRSS / 1024;
const gAct = m.newGradSet(), gRet = m.newGradSet();
const r0 = rss();
await m.craftStepAsync(batch, gAct, gRet);
const r1 = rss();
for (let i = 0; i < 8; i++) await m.craftStepAsync(batch, gAct, gRet);
console.log(JSON.stringify({ first: r1 - r0, after: rss() - r1 }));
