// Both models' CUDA forward and backward against the outputs recorded on the CUDA emulator in
// test/fixtures/engine/cuda.* (its README.md): each case's losses and gradient sets bit for
// bit, and the same under every product kernel (CRAFTGRAD_CUDA_GEMM, child processes). A
// difference names the case, call, tensor and element where it starts, and by how much.
// Runs where the addon has CUDA (npm run test:cuda-emulator builds it on the emulator);
// elsewhere each test skips with the reason.
//
// On another device than the recorded one (a real GPU), the bits may differ where the kernels
// call the math library (Qwen2's expf: the emulator's is the host's libm, a GPU's is CUDA's):
// there the differences are printed as notes, not failures; on the recorded device they fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { backendInfo } from '../dist/index.js';
import { announceGpu, gpu } from './helpers/gpu.mjs';
import { casesFor, cleanup, compareCase, loadFixtures, runCase } from './fixtures/engine/cases.mjs';

const skip = announceGpu(import.meta.url);
const fixtures = loadFixtures('cuda');
const device = gpu ? `cuda:0 (${backendInfo().cuda.devices[0].name})` : undefined;
const sameDevice = device === fixtures.recorded.device;
const child = fileURLToPath(new URL('./fixtures/engine/check-child.mjs', import.meta.url));
process.on('exit', () => cleanup());

function verdict(diffs, what) {
  if (diffs.length === 0) return;
  const text = `${diffs.length} difference(s) from test/fixtures/engine/cuda.*${what}:\n  ${diffs.join('\n  ')}`;
  if (sameDevice) assert.fail(text);
  console.log(`# note: on ${device}, recorded on ${fixtures.recorded.device}: ${text.replace(/\n/g, '\n# ')}`);
}

test('the CUDA fixtures hold exactly the cases of cases.mjs marked cuda', () => {
  assert.deepEqual([...fixtures.cases.keys()].sort(), casesFor('cuda').map((c) => c.id).sort());
});

for (const c of casesFor('cuda')) {
  test(`CUDA case ${c.id}, bit for bit`, { skip }, async () => {
    if (!sameDevice) console.log(`# ${c.id}: this device is ${device}, the fixtures were recorded on ${fixtures.recorded.device}`);
    verdict(compareCase(c.id, await runCase(c, 'cuda:0'), fixtures.cases.get(c.id)), '');
  });
}

// Every product kernel gives each output as the same fmaf chain (native/cuda/gemm_cuda.h).
for (const gemm of ['simple', 'tiled64', 'tiled128', 'small32']) {
  test(`every CUDA case under CRAFTGRAD_CUDA_GEMM=${gemm}, bit for bit`, { skip }, async () => {
    const r = await new Promise((resolve, reject) => {
      execFile(process.execPath, [child, 'cuda', '1'], { env: { ...process.env, CRAFTGRAD_CUDA_GEMM: gemm }, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout.trim().split('\n').at(-1)));
      });
    });
    assert.equal(r.gemm, gemm, 'the product kernel really was chosen');
    verdict(r.diffs, ` (CRAFTGRAD_CUDA_GEMM=${gemm})`);
  });
}
