// The CUDA backend. With a GPU: CUDA against the CPU backend (1e-6 relative, and bit for
// bit: both follow native/core/numerics.h's block/lane order), every output element
// written, run-to-run determinism, a set over 2^31 elements, out-of-memory errors and the
// boundary checks of the raw binding. Without one, every GPU test is skipped with the
// reason, and the tests of what a machine without a GPU must do run instead.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { surgery, surgeryAsync, GradSet, backendInfo } from '../dist/index.js';
import { adoptResult, gradSetInternals } from '../dist/gradset.js';
import { gradPairs, rng } from './helpers/random.mjs';
import { sameBits as bytesEqual } from './helpers/same-bits.mjs';
import { announceGpu, gpu, gpuTest } from './helpers/gpu.mjs';
import { referenceSurgery, relError } from './helpers/reference.mjs';
import { overflowPairs, OVERFLOW_SIZES } from './helpers/overflow.mjs';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const binding = require('node-gyp-build')(root);

const info = backendInfo().cuda;
announceGpu(import.meta.url);

// Odd sizes, zero-length tensors, sizes around the block (1024) and chunk (65536)
// boundaries; packed back to back in a GradSet, most tensors start unaligned.
const SIZES = [0, 1, 3, 15, 16, 17, 0, 1000, 1023, 1024, 1025, 4096, 65535, 65536, 65537, 200003, 5, 0, 131072];

function randomSizes(seed, count) {
  const rand = rng(seed);
  const sizes = [];
  for (let i = 0; i < count; ++i) {
    const kind = rand();
    if (kind < 0.1) sizes.push(0);
    else if (kind < 0.5) sizes.push(Math.floor(rand() * 2000));
    else if (kind < 0.9) sizes.push(Math.floor(rand() * 70000));
    else sizes.push(Math.floor(rand() * 400000));
  }
  return sizes;
}

function assertSameResult(got, want, what) {
  assert.equal(got.numTensors, want.numTensors, `${what}: numTensors`);
  assert.equal(got.numConflicts, want.numConflicts, `${what}: numConflicts`);
  assert.equal(got.nonFinite, want.nonFinite, `${what}: nonFinite`);
  assert.deepEqual([...got.conflicts], [...want.conflicts], `${what}: conflicts`);
  for (let i = 0; i < want.dots.length; ++i) {
    const tol = 1e-6 * Math.max(Math.abs(want.dots[i]), 1e-30);
    assert.ok(Math.abs(got.dots[i] - want.dots[i]) <= tol, `${what}: dots[${i}] ${got.dots[i]} vs ${want.dots[i]}`);
  }
  const relNorm = Math.abs(got.gradNorm - want.gradNorm) / Math.max(want.gradNorm, 1e-30);
  assert.ok(relNorm <= 1e-6, `${what}: gradNorm ${got.gradNorm} vs ${want.gradNorm}`);
}

function assertOutClose(gotArrays, act, ret, opts, what) {
  const ref = referenceSurgery(act, ret, opts);
  for (let i = 0; i < act.length; ++i) {
    const err = relError(gotArrays[i], ref.out[i], act[i], ret[i], ref.coefficients[i]);
    assert.ok(err <= 1e-6, `${what}: out[${i}] (n=${act[i].length}) rel err ${err}`);
  }
}

// ---- tests that run on every machine ----

test('backendInfo().cuda describes the build and the machine', () => {
  const all = backendInfo();
  assert.equal(typeof info.compiled, 'boolean');
  assert.equal(typeof info.available, 'boolean');
  assert.ok(Array.isArray(info.devices));
  assert.equal(all.backends.includes('cuda'), info.compiled, "backends lists 'cuda' exactly when it is compiled");
  if (!info.available) {
    assert.equal(typeof info.reason, 'string');
    assert.ok(info.reason.length > 0, 'an unavailable backend says why');
    assert.equal(info.devices.length, 0);
  }
  if (info.compiled) {
    assert.equal(typeof info.runtimeVersion, 'number');
    assert.ok(info.runtimeVersion >= 12000, `runtime ${info.runtimeVersion}`);
    assert.equal(typeof info.driverVersion, 'number');
  }
  for (const d of info.devices) {
    assert.equal(typeof d.name, 'string');
    assert.ok(d.totalMemory > 0);
    assert.match(d.computeCapability, /^\d+\.\d+$/);
  }
});

test("without a usable GPU, device: 'cuda' throws a clear Error and 'auto' uses the CPU", (t) => {
  if (gpu) {
    t.skip('a CUDA device is present');
    return;
  }
  const { act, ret } = gradPairs([5, 1000, 0, 70000], 11);
  assert.throws(() => surgery(act, ret, { lambda: 0.1, device: 'cuda' }), (e) => {
    assert.ok(e instanceof Error);
    assert.match(e.message, /CUDA/);
    if (info.compiled) assert.ok(e.message.includes(info.reason), `the message gives the reason: ${e.message}`);
    return true;
  });
  assert.throws(() => GradSet.zeros([3, 4], { device: 'cuda' }), /CUDA/);
  assert.throws(() => GradSet.zeros([3, 4], { device: 'cuda:1' }), /CUDA/);
  const auto = surgery(act, ret, { lambda: 0.1, device: 'auto' });
  const cpu = surgery(act, ret, { lambda: 0.1, device: 'cpu' });
  for (let i = 0; i < act.length; ++i) assert.ok(bytesEqual(auto.out[i], cpu.out[i]));
  assert.equal(auto.gradNorm, cpu.gradNorm);
  assert.equal(GradSet.zeros([3], { device: 'auto' }).device, 'cpu');
});

test('without a usable GPU, the raw CUDA binding throws JS Errors (never aborts)', async (t) => {
  if (gpu || !info.compiled) {
    t.skip(gpu ? 'a CUDA device is present' : 'this build has no CUDA backend');
    return;
  }
  const isCudaError = (e) => e instanceof Error && e.code === 'ERR_CRAFTGRAD_CUDA' && e.message.includes(info.reason);
  const opts = { lambda: 0.1, eps: 1e-8, projection: true, cosines: false };
  assert.throws(() => new binding.TensorSet({ device: 'cuda:0', sizes: [16] }), isCudaError);
  assert.throws(() => binding.surgery([new Float32Array(3)], [new Float32Array(3)], { ...opts, device: 'cuda:0' }), isCudaError);
  assert.throws(() => binding.surgeryAsync([new Float32Array(3)], [new Float32Array(3)], { ...opts, device: 'cuda:0' }), isCudaError);
  // Argument errors come first, named, as TypeError/RangeError.
  assert.throws(() => binding.surgery({}, {}, { ...opts, device: 'cuda:0' }),
    (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG_TYPE' && /act must be an Array of Float32Array/.test(e.message));
  assert.throws(() => new binding.TensorSet({ device: 'cuda:-1', sizes: [16] }), (e) => e instanceof RangeError && /device/.test(e.message));
  assert.throws(() => binding.surgery([new Float32Array(3)], [new Float32Array(4)], { ...opts, device: 'cuda:0' }),
    (e) => e instanceof RangeError && /ret\[0\] has 4 elements/.test(e.message));
});

test('GradSet.dispose() frees a CUDA set\'s native handle (its memory and cached layout) once (fake handle: runs without a GPU)', () => {
  const disposed = [];
  const handle = { device: 'cuda:0', length: 3, numTensors: 2, disposed: false, dispose() { disposed.push('handle'); } };
  const set = adoptResult(GradSet.zeros([1, 2]), handle);
  assert.equal(set.device, 'cuda:0');
  assert.equal(gradSetInternals(set), handle);
  set.dispose();
  assert.deepEqual(disposed, ['handle']);
  assert.equal(set.disposed, true);
  set.dispose(); // idempotent
  assert.equal(disposed.length, 1);
});

// ---- GPU tests ----

gpuTest('CUDA matches the CPU on odd sizes, zero-length tensors and unaligned offsets', () => {
  for (const [seed, lambda, projection] of [[1, 0.05, true], [2, 0, true], [3, 1.7, false], [4, 0.3, true]]) {
    const sizes = seed === 1 ? SIZES : randomSizes(seed, 40);
    const { act, ret } = gradPairs(sizes, seed);
    const opts = { lambda, projection, cosines: true };
    const cpu = surgery(act, ret, opts);
    const a = GradSet.fromArrays(act, { device: 'cuda' });
    const r = GradSet.fromArrays(ret, { device: 'cuda' });
    const g = surgery(a, r, opts);
    assert.equal(g.out.device, 'cuda:0');
    const out = g.out.toArrays();
    assertSameResult(g, cpu, `seed ${seed}`);
    assertOutClose(out, act, ret, opts, `seed ${seed}`);
    for (let i = 0; i < act.length; ++i) {
      assert.ok(Math.abs(g.cosines[i] - cpu.cosines[i]) <= 1e-6, `cosines[${i}]`);
    }
    for (const s of [a, r, g.out]) s.dispose();
  }
});

gpuTest('CUDA gives the CPU backend\'s bits (same block/lane order)', () => {
  const { act, ret } = gradPairs(SIZES, 21);
  const cpu = surgery(act, ret, { lambda: 0.05 });
  const a = GradSet.fromArrays(act, { device: 'cuda' });
  const r = GradSet.fromArrays(ret, { device: 'cuda' });
  const g = surgery(a, r, { lambda: 0.05 });
  const out = g.out.toArrays();
  for (let i = 0; i < act.length; ++i) assert.ok(bytesEqual(out[i], cpu.out[i]), `out[${i}] (n=${act[i].length})`);
  assert.deepEqual([...g.dots], [...cpu.dots]);
  assert.equal(g.gradNorm, cpu.gradNorm);
  for (const s of [a, r, g.out]) s.dispose();
});

gpuTest('every output element is written (outputs poisoned with NaN first)', async () => {
  const { act, ret } = gradPairs(SIZES, 5);
  const a = GradSet.fromArrays(act, { device: 'cuda' });
  const r = GradSet.fromArrays(ret, { device: 'cuda' });
  const out = a.zerosLike();
  for (const run of [(o) => surgery(a, r, { lambda: 0.2, out: o }), (o) => surgeryAsync(a, r, { lambda: 0.2, out: o })]) {
    out.fill(NaN);
    const res = await run(out);
    assert.equal(res.out, out);
    assert.equal(res.nonFinite, 0);
    const got = out.toArrays();
    got.forEach((x, i) => assert.ok(!x.some(Number.isNaN), `out[${i}] has unwritten (NaN) elements`));
    assertOutClose(got, act, ret, { lambda: 0.2 }, 'poisoned');
  }
  // Host arrays staged through the GPU, poisoned the same way.
  const hostOut = act.map((x) => new Float32Array(x.length).fill(NaN));
  surgery(act, ret, { lambda: 0.2, device: 'cuda', out: hostOut });
  hostOut.forEach((x, i) => assert.ok(!x.some(Number.isNaN), `host out[${i}]`));
  assertOutClose(hostOut, act, ret, { lambda: 0.2 }, 'host staged');
  for (const s of [a, r, out]) s.dispose();
});

gpuTest('bit-identical run to run, sync and async, device and host paths', async () => {
  const sizes = randomSizes(6, 60);
  const { act, ret } = gradPairs(sizes, 6);
  const a = GradSet.fromArrays(act, { device: 'cuda' });
  const r = GradSet.fromArrays(ret, { device: 'cuda' });
  const first = surgery(a, r, { lambda: 0.1 });
  const firstOut = first.out.toFlat();
  for (let k = 0; k < 3; ++k) {
    const again = k === 1 ? await surgeryAsync(a, r, { lambda: 0.1 }) : surgery(a, r, { lambda: 0.1 });
    assert.ok(bytesEqual(again.out.toFlat(), firstOut), `run ${k}`);
    assert.ok(bytesEqual(again.dots, first.dots));
    assert.equal(again.gradNorm, first.gradNorm);
    again.out.dispose();
  }
  const host = surgery(act, ret, { lambda: 0.1, device: 'cuda' });
  const hostFlat = new Float32Array(firstOut.length);
  let off = 0;
  for (const x of host.out) {
    hostFlat.set(x, off);
    off += x.length;
  }
  assert.ok(bytesEqual(hostFlat, firstOut), 'host staging gives the same bits');
  for (const s of [a, r, first.out]) s.dispose();
});

gpuTest('in place (out = act) and non-finite data', () => {
  const { act, ret } = gradPairs([1000, 5000, 3], 7);
  act[1][17] = NaN;
  ret[2][0] = Infinity;
  const cpu = surgery(act, ret, { lambda: 0.1 });
  const a = GradSet.fromArrays(act, { device: 'cuda' });
  const r = GradSet.fromArrays(ret, { device: 'cuda' });
  const g = surgery(a, r, { lambda: 0.1, out: a });
  assert.equal(g.out, a);
  assert.equal(g.nonFinite, 2);
  assert.equal(g.nonFinite, cpu.nonFinite);
  const got = a.toArrays();
  assert.ok(bytesEqual(got[0], cpu.out[0]));
  a.dispose();
  r.dispose();
});

gpuTest('the raw binding checks its arguments', () => {
  const opts = { lambda: 0.1, eps: 1e-8, projection: true, cosines: false };
  const buf = new binding.TensorSet({ device: 'cuda:0', sizes: [4, 6] });
  const other = new binding.TensorSet({ device: 'cuda:0', sizes: [11] });
  assert.equal(buf.device, 'cuda:0');
  assert.equal(buf.length, 10);
  assert.equal(buf.numTensors, 2);
  assert.equal(buf.data, undefined);
  assert.throws(() => binding.surgery(buf, other, opts),
    (e) => e instanceof RangeError && /ret has 11 elements but act has 10/.test(e.message));
  assert.throws(() => binding.surgery(buf, {}, opts),
    (e) => e instanceof TypeError && /ret must be a TensorSet/.test(e.message));
  const host = new binding.TensorSet({ device: 'cpu', sizes: [4, 6] });
  assert.throws(() => binding.surgery(buf, host, opts),
    (e) => e instanceof RangeError && /ret is on cpu but act is on cuda:0/.test(e.message));
  assert.throws(() => binding.surgery(buf, buf, { ...opts, lambda: -1 }), /lambda/);
  assert.throws(() => buf.upload(new Float32Array(11), 0), (e) => e instanceof RangeError && /src has 11 elements/.test(e.message));
  assert.throws(() => buf.download(new Float32Array(4), 7), (e) => e instanceof RangeError && /dst/.test(e.message));
  assert.throws(() => new binding.TensorSet({ device: `cuda:${info.devices.length}`, sizes: [4] }), (e) => e instanceof RangeError && /device/.test(e.message));
  other.dispose();
  assert.equal(other.disposed, true);
  assert.throws(() => binding.surgery(buf, other, opts),
    (e) => e instanceof TypeError && /ret is a disposed TensorSet/.test(e.message));
  const src = Float32Array.from({ length: 10 }, (_, i) => i);
  buf.upload(src, 0);
  const back = new Float32Array(4);
  buf.download(back, 3);
  assert.deepEqual([...back], [3, 4, 5, 6]);
  buf.fill(2.5);
  buf.download(back, 0);
  assert.deepEqual([...back], [2.5, 2.5, 2.5, 2.5]);
  const res = binding.surgery(buf, buf, { ...opts, lambda: 0.5 });
  assert.equal(res.out.length, 10);
  assert.equal(res.out.device, 'cuda:0');
  assert.equal(res.numTensors, 2);
  res.out.dispose();
  buf.dispose();
  buf.dispose(); // idempotent
});

// A failure inside the computation (here: out of device memory for the host arrays' staging
// and for the model's scratch, both allocated when the call runs) must reach JS as the same
// error from the synchronous call and from its async form (native/napi/op_call.h). The
// emulator's device memory can be made small (CGEMU_DEVICE_MEMORY); a real GPU's cannot.
gpuTest('a failure while computing throws synchronously and rejects asynchronously with the same error (emulator)', async (t) => {
  if (!info.devices[0].name.includes('emulator')) {
    t.skip('needs the CUDA emulator (its device memory is set small by CGEMU_DEVICE_MEMORY)');
    return;
  }
  const { spawnSync } = await import('node:child_process');
  const script = `
    import { surgery, surgeryAsync, AdapterPolicy } from './dist/index.js';
    const pick = (e) => ({ name: e.name, code: e.code, device: e.device, requestedBytes: e.requestedBytes, message: e.message });
    const both = async (sync, async) => {
      let s, a;
      try { sync(); } catch (e) { s = pick(e); }
      try { await async(); } catch (e) { a = pick(e); }
      return { sync: s, async: a };
    };
    const act = [new Float32Array(1 << 18)], ret = [new Float32Array(1 << 18)];
    const opts = { lambda: 0.1, device: 'cuda:0' };
    const model = AdapterPolicy.create({ tokens: 64, width: 64, blocks: 2, rank: 2, headWidth: 4, chunk: 1, actionDims: 2 }, { device: 'cuda:0' });
    const batch = { tokens: new Float32Array(64 * 64 * 64), actions: new Float32Array(64 * 2), size: 64 };
    const gA = model.newGradSet(), gR = model.newGradSet();
    console.log(JSON.stringify({
      surgery: await both(() => surgery(act, ret, opts), () => surgeryAsync(act, ret, opts)),
      model: await both(() => model.craftStep(batch, gA, gR), () => model.craftStepAsync(batch, gA, gR)),
    }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: root, encoding: 'utf8', env: { ...process.env, CGEMU_DEVICE_MEMORY: String(2 ** 20) },
  });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout.trim().split('\n').pop());
  for (const [what, { sync, async }] of Object.entries(got)) {
    assert.ok(sync, `${what}: the synchronous call threw`);
    assert.equal(sync.code, 'ERR_CRAFTGRAD_CUDA_OOM', `${what}: ${sync.message}`);
    assert.equal(sync.device, 0);
    assert.ok(sync.requestedBytes > 2 ** 20, `${what}: requestedBytes ${sync.requestedBytes}`);
    assert.deepEqual(async, sync, `${what}: the async form rejects with the same error`);
  }
});

gpuTest('out of device memory is an Error that says how many bytes on which device', () => {
  const elements = 2 ** 44; // 64 TiB of float32
  assert.throws(() => GradSet.zeros([elements], { device: 'cuda' }), (e) => {
    assert.ok(e instanceof Error);
    assert.equal(e.code, 'ERR_CRAFTGRAD_CUDA_OOM');
    assert.equal(e.requestedBytes, elements * 4);
    assert.match(e.message, new RegExp(`${elements * 4} bytes`));
    assert.match(e.message, /cuda:0/);
    return true;
  });
  // The device is still usable afterwards.
  const s = GradSet.zeros([5], { device: 'cuda' });
  assert.deepEqual([...s.toFlat()], [0, 0, 0, 0, 0]);
  s.dispose();
});

gpuTest('cudaMemInfo reports the device memory now: an allocation takes its bytes from the free count', () => {
  const before = binding.bench.cudaMemInfo(0);
  assert.equal(before.totalBytes, info.devices[0].totalMemory);
  assert.ok(before.freeBytes > 0 && before.freeBytes <= before.totalBytes, JSON.stringify(before));
  const bytes = 64 * 2 ** 20;
  const buf = new binding.TensorSet({ device: 'cuda:0', sizes: [bytes / 4] });
  const during = binding.bench.cudaMemInfo(0);
  assert.ok(before.freeBytes - during.freeBytes >= bytes, `free ${before.freeBytes} -> ${during.freeBytes} after ${bytes} bytes`);
  buf.dispose();
  assert.throws(() => binding.bench.cudaMemInfo(info.devices.length), (e) => e instanceof RangeError && /device/.test(e.message));
});

gpuTest('a set over 2^31 elements in total', (t) => {
  if (process.env.CGTEST_SKIP_2G === '1') {
    t.skip('CGTEST_SKIP_2G=1: too slow under compute-sanitizer (scripts/device/session.sh sanitize)');
    return;
  }
  const sizes = [2 ** 31 + 5, 1001, 2 ** 20 + 7]; // one tensor alone crosses element 2^31
  const total = sizes.reduce((x, y) => x + y, 0);
  const need = 3 * total * 4 + 512 * 2 ** 20;
  const { freeBytes } = binding.bench.cudaMemInfo(0);
  if (freeBytes < need * 1.1) {
    t.skip(`needs about ${(need / 2 ** 30).toFixed(1)} GiB of device memory, ${info.devices[0].name} has ${(freeBytes / 2 ** 30).toFixed(1)} GiB free`);
    return;
  }
  const a = GradSet.zeros(sizes, { device: 'cuda' });
  const r = GradSet.zeros(sizes, { device: 'cuda' });
  a.fill(1);
  r.fill(-0.5);
  const lambda = 0.25;
  const res = surgery(a, r, { lambda });
  assert.equal(res.numConflicts, 3);
  assert.equal(res.nonFinite, 0);
  let normSq = 0;
  const buf = gradSetInternals(res.out); // the native TensorSet: download(dst, offset)
  sizes.forEach((n, i) => {
    const d = -0.5 * n, q = 0.25 * n;
    assert.equal(res.dots[i], d, `dots[${i}] is exact for these values`);
    const c = Math.fround(lambda - d / (q + 1e-8));
    const want = Math.fround(1 + c * -0.5);
    normSq += n * want * want;
    // Windows at the start, the end, and (for the big tensor) across element 2^31.
    const off = res.out.offsets[i];
    const windows = [[0, Math.min(n, 64)], [Math.max(0, n - 64), n]];
    if (off < 2 ** 31 && off + n > 2 ** 31) windows.push([Math.max(0, 2 ** 31 - 64 - off), Math.min(n, 2 ** 31 + 64 - off)]);
    for (const [lo, hi] of windows) {
      if (hi <= lo) continue;
      const got = new Float32Array(hi - lo);
      buf.download(got, off + lo);
      for (let j = 0; j < got.length; ++j) assert.ok(Math.abs(got[j] - want) <= 1e-6 * Math.abs(want) + 1e-12, `out[${i}][${lo + j}] = ${got[j]}, want ${want}`);
    }
  });
  assert.ok(Math.abs(res.gradNorm - Math.sqrt(normSq)) <= 1e-6 * Math.sqrt(normSq), `gradNorm ${res.gradNorm} vs ${Math.sqrt(normSq)}`);
  for (const s of [a, r, res.out]) s.dispose();
});

gpuTest('many tensors in many L2 groups (launch g: pass 2 of group g-1 with pass 1 of group g)', async () => {
  // The addon reads CRAFTGRAD_CUDA_GROUP_BYTES once per process: one child per budget.
  const { spawnSync } = await import('node:child_process');
  const script = join(root, 'test', 'fixtures', 'cuda-group-budget.mjs');
  for (const budget of [undefined, String(1 << 20), String(3 << 20)]) {
    const env = { ...process.env };
    if (budget === undefined) delete env.CRAFTGRAD_CUDA_GROUP_BYTES;
    else env.CRAFTGRAD_CUDA_GROUP_BYTES = budget;
    const child = spawnSync(process.execPath, [script], { env, encoding: 'utf8' });
    assert.equal(child.status, 0, `budget ${budget ?? 'default'}: ${child.stderr}`);
    const { groupBytes, cpu, cuda, outDiffers } = JSON.parse(child.stdout);
    // A small budget makes many groups out of this set, if the child really ran with it.
    assert.equal(groupBytes, budget === undefined ? null : Number(budget), 'group budget in effect');
    assertSameResult(cuda, cpu, `group budget ${budget ?? 'default'}`);
    outDiffers.forEach((differs, i) => assert.ok(!differs, `budget ${budget ?? 'default'}: out[${i}]`));
  }
});

gpuTest('fp32 block sums that overflow on finite data: the float64 fallback per block, the CPU\'s bits, run to run', () => {
  const { act, ret, huge } = overflowPairs(OVERFLOW_SIZES, 31);
  assert.ok(huge.some((h) => h > 0));
  const cpu = surgery(act, ret, { lambda: 0.01, cosines: true });
  const a = GradSet.fromArrays(act, { device: 'cuda' });
  const r = GradSet.fromArrays(ret, { device: 'cuda' });
  const runs = [surgery(a, r, { lambda: 0.01, cosines: true }), surgery(a, r, { lambda: 0.01, cosines: true })];
  runs.push(surgery(act, ret, { lambda: 0.01, cosines: true, device: 'cuda' }));
  for (const [k, g] of runs.entries()) {
    assert.equal(g.nonFinite, 0, `run ${k}`);
    const out = g.out instanceof GradSet ? g.out.toArrays() : g.out;
    for (let i = 0; i < act.length; ++i) {
      // float64 reference (products of floats are exact in float64)
      let d = 0;
      for (let j = 0; j < act[i].length; ++j) d += act[i][j] * ret[i][j];
      const scale = Math.sqrt(act[i].reduce((s, x) => s + x * x, 0) * ret[i].reduce((s, x) => s + x * x, 0));
      assert.ok(Number.isFinite(g.dots[i]) && Math.abs(g.dots[i] - d) <= 1e-6 * scale, `run ${k}: dots[${i}] ${g.dots[i]} vs ${d}`);
      assert.ok(bytesEqual(out[i], cpu.out[i]), `run ${k}: out[${i}]`);
    }
    assert.deepEqual([...g.dots], [...cpu.dots], `run ${k}: dots are the CPU's bits`);
    assert.deepEqual([...g.cosines], [...cpu.cosines], `run ${k}: cosines`);
    if (g.out instanceof GradSet) g.out.dispose();
  }
  a.dispose();
  r.dispose();
});

gpuTest('disposed device memory is freed off the main thread, and is free for the next allocation and in cudaMemInfo', (t) => {
  const bytes = 64 * 2 ** 20;
  const before = binding.bench.cudaMemInfo(0);
  for (let i = 0; i < 3; ++i) new binding.TensorSet({ device: 'cuda:0', sizes: [bytes / 4] }).dispose();
  // The frees are queued to the release thread; cudaMemInfo waits for them.
  const after = binding.bench.cudaMemInfo(0);
  assert.ok(after.freeBytes >= before.freeBytes, `free ${before.freeBytes} -> ${after.freeBytes} after dispose`);
  if (!/emulator/i.test(info.devices[0].name)) {
    t.diagnostic('the allocate-dispose loop near the memory limit runs on the emulator only (CGEMU_DEVICE_MEMORY)');
    return;
  }
  // Each allocation takes 60% of the device: it fits only if the previous one was freed
  // by the time the allocation asks (a release still queued is waited for, then retried).
  const script = `import { createRequire } from 'node:module';
    const binding = createRequire(import.meta.url)('node-gyp-build')(${JSON.stringify(root)});
    for (let i = 0; i < 8; ++i) new binding.TensorSet({ device: 'cuda:0', sizes: [${(96 * 2 ** 20) / 4}] }).dispose();
    process.stdout.write('ok');`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, CGEMU_DEVICE_MEMORY: String(160 * 2 ** 20) },
    encoding: 'utf8',
  });
  assert.equal(out, 'ok');
});
