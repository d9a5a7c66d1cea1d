// Checkpoints: safetensors round trips, validation (manifest, sizes, sha256, decoding,
// state), fallback to the previous valid checkpoint, keep_last, crash leftovers repaired,
// and an unwritable run directory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkCheckpoint, findLatestCheckpoint, writeCheckpoint, RunError } from '../dist/index.js';
import { pruneCheckpoints } from '../dist/run/checkpoint-write.js';
import { train } from './fixtures/run-loop.mjs';
import { tempDir } from './helpers/temp-dir.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));

function tmp(t) {
  const dir = tempDir(t, 'craftgrad-ckpt-');
  return dir;
}

const config = { lr: 1e-3, nested: { a: 1 } };

test('tensors of every dtype round-trip through a checkpoint bit for bit', async (t) => {
  const ck = join(tmp(t), 'checkpoints');
  const groups = {
    model: {
      'lora.0.A': { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1.5, -0, NaN, Infinity, 1e-45, -3.25]) },
      bare: Float32Array.from([7, 8, 9]),
      scalar: { dtype: 'F64', shape: [], data: Float64Array.from([Math.PI]) },
      empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    },
    anchor: { bf16: { dtype: 'BF16', shape: [2], data: Uint16Array.from([0x3f80, 0xc000]) } },
    optimizer: { step: { dtype: 'I64', shape: [1], data: BigInt64Array.from([123456789012345n]) }, mask: { dtype: 'U8', shape: [3], data: Uint8Array.from([0, 1, 255]) } },
  };
  const state = { epoch: 2, lambda: 0.0625, rng: [1, 2, 3], sampler: { position: 17 } };
  const dir = await writeCheckpoint(ck, 42, groups, state, { config });
  assert.equal(dir, join(ck, 'step-000042'));
  assert.deepEqual(readdirSync(dir).sort(), ['anchor.safetensors', 'manifest.json', 'model.safetensors', 'optimizer.safetensors', 'state.json']);
  const c = await checkCheckpoint(dir, { decode: true });
  assert.deepEqual(c.problems, []);
  assert.equal(c.valid, true);
  assert.deepEqual(c.state.trainer, state);
  assert.equal(c.state.step, 42);
  assert.deepEqual(c.state.config, config);
  const m = c.tensors.model;
  assert.deepEqual(Buffer.from(m['lora.0.A'].data.buffer, m['lora.0.A'].data.byteOffset, 24), Buffer.from(groups.model['lora.0.A'].data.buffer));
  assert.deepEqual(m['lora.0.A'].shape, [2, 3]);
  assert.deepEqual([...m.bare.data], [7, 8, 9]);
  assert.deepEqual(m.bare.shape, [3]);
  assert.deepEqual(m.scalar.shape, []);
  assert.equal(m.scalar.data[0], Math.PI);
  assert.deepEqual(m.empty.shape, [0, 4]);
  assert.deepEqual([...c.tensors.anchor.bf16.data], [0x3f80, 0xc000]);
  assert.equal(c.tensors.optimizer.step.data[0], 123456789012345n);
  // the manifest lists every other file with its true size and sha256
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  for (const [f, e] of Object.entries(manifest.files)) {
    const bytes = readFileSync(join(dir, f));
    assert.equal(e.size, bytes.length);
    assert.equal(e.sha256, createHash('sha256').update(bytes).digest('hex'));
  }
  // standard safetensors: 8-byte LE header length, JSON header with __metadata__.format = pt
  const bytes = readFileSync(join(dir, 'model.safetensors'));
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
  assert.equal(header.__metadata__.format, 'pt');
  assert.deepEqual(header['lora.0.A'].shape, [2, 3]);
  // bad input is refused before anything is written
  await assert.rejects(writeCheckpoint(ck, 43, { anchor: {} }, {}, { config }), /must include 'model'/);
  await assert.rejects(writeCheckpoint(ck, 43, { model: {}, 'Bad-Name': {} }, {}, { config }), /group name 'Bad-Name'/);
  await assert.rejects(writeCheckpoint(ck, 43, { model: {} }, { x: NaN }, { config }), /trainer state.x is NaN/);
  await assert.rejects(writeCheckpoint(ck, 43, { model: {} }, { x: [1n] }, { config }), /trainer state.x\[0\] is a bigint/);
  assert.ok(!existsSync(join(ck, 'step-000043')));
  assert.deepEqual(readdirSync(ck), ['step-000042'], 'no temp directory left behind');
});

function rewriteManifestEntry(dir, file) {
  const mPath = join(dir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(mPath, 'utf8'));
  const bytes = readFileSync(join(dir, file));
  manifest.files[file] = { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  writeFileSync(mPath, JSON.stringify(manifest));
}

// Rewrites model.safetensors' JSON header in place (same length) and fixes the manifest,
// so that only the safetensors decoder can find the fault.
function editHeader(dir, edit) {
  const p = join(dir, 'model.safetensors');
  const b = readFileSync(p);
  const n = Number(b.readBigUInt64LE(0));
  const text = edit(b.subarray(8, 8 + n).toString().trimEnd()).padEnd(n, ' '); // padding absorbs growth
  if (Buffer.byteLength(text) !== n) throw new Error(`header edit changed its length: ${text}`);
  Buffer.from(text).copy(b, 8);
  writeFileSync(p, b);
  rewriteManifestEntry(dir, 'model.safetensors');
}

// Each corruption of the newest checkpoint, and what the report must mention.
const corruptions = {
  'manifest not JSON': [(d) => writeFileSync(join(d, 'manifest.json'), '{"format": "craftgrad.checkpoint", '), /manifest\.json: not valid JSON/],
  'manifest missing': [(d) => rmSync(join(d, 'manifest.json')), /manifest\.json: missing/],
  'manifest wrong step': [(d) => {
    const p = join(d, 'manifest.json');
    writeFileSync(p, readFileSync(p, 'utf8').replace('"step": 6', '"step": 5'));
  }, /manifest\.json \(step\): 5 does not match/],
  'tensor byte flipped': [(d) => {
    const p = join(d, 'model.safetensors');
    const b = readFileSync(p);
    b[b.length - 3] ^= 0x40;
    writeFileSync(p, b);
  }, /model\.safetensors \(sha256\)/],
  'tensor file truncated': [(d) => {
    const p = join(d, 'optimizer.safetensors');
    writeFileSync(p, readFileSync(p).subarray(0, 100));
  }, /optimizer\.safetensors \(size\): 100 bytes/],
  'tensor file missing': [(d) => rmSync(join(d, 'anchor.safetensors')), /anchor\.safetensors: missing/],
  'extra file': [(d) => writeFileSync(join(d, 'stray.bin'), 'x'), /stray\.bin: extra file/],
  'state not JSON (manifest matching)': [(d) => {
    writeFileSync(join(d, 'state.json'), '{"step": 6, ');
    rewriteManifestEntry(d, 'state.json');
  }, /state\.json: not valid JSON/],
  'state wrong step (manifest matching)': [(d) => {
    const p = join(d, 'state.json');
    writeFileSync(p, readFileSync(p, 'utf8').replace('"step": 6', '"step": 7'));
    rewriteManifestEntry(d, 'state.json');
  }, /state\.json \(step\): 7 does not match/],
  'oversized safetensors header (manifest matching)': [(d) => {
    const p = join(d, 'model.safetensors');
    const b = readFileSync(p);
    b.writeBigUInt64LE(1n << 40n, 0);
    writeFileSync(p, b);
    rewriteManifestEntry(d, 'model.safetensors');
  }, /safetensors file .*model\.safetensors, header length: .* exceeds/],
  'safetensors offsets out of range (manifest matching)': [(d) => editHeader(d, (text) => text.replace(/("w0":\{[^}]*"data_offsets":\[\d+,)(\d+)\]/, (_m, a, e) => `${a}${String(Number(e) + 4000).padStart(e.length, '0')}]`)),
    /model\.safetensors, tensors\["w0"\]\.data_offsets: .*(beyond the data buffer|does not match shape)/],
  'duplicate safetensors tensor (manifest matching)': [(d) => editHeader(d, (text) => text.replace('"w1":', '"w0":')),
    /model\.safetensors, tensors\["w0"\]: appears more than once/],
  'overlapping safetensors offsets (manifest matching)': [(d) => {
    const p = join(d, 'model.safetensors');
    const b = readFileSync(p);
    const n = Number(b.readBigUInt64LE(0));
    const h = JSON.parse(b.subarray(8, 8 + n).toString());
    const [x, y] = Object.keys(h).filter((k) => k !== '__metadata__');
    h[y].data_offsets = h[x].data_offsets.slice(); // w0 and w1 differ in size: use two equal ones below
    const text = Buffer.from(JSON.stringify(h).padEnd(n, ' '));
    if (text.length !== n) throw new Error('header grew');
    text.copy(b, 8);
    writeFileSync(p, b);
    rewriteManifestEntry(d, 'model.safetensors');
  }, /model\.safetensors, tensors\["w\d"\]\.data_offsets/],
};

for (const [name, [corrupt, expected]] of Object.entries(corruptions)) {
  test(`corrupted newest checkpoint detected and the previous one used: ${name}`, async (t) => {
    const dir = join(tmp(t), 'run');
    await train({ dir, steps: 6, saveEvery: 3, size: 8 });
    const newest = join(dir, 'checkpoints', 'step-000006');
    corrupt(newest);
    const c = await checkCheckpoint(newest);
    assert.equal(c.valid, false);
    assert.match(c.problems.join('\n'), expected);
    const found = await findLatestCheckpoint(join(dir, 'checkpoints'));
    assert.equal(found.latest.step, 3);
    assert.equal(found.skipped.length, 1);
    const r = await train({ dir, steps: 8, saveEvery: 3, size: 8, resume: true });
    assert.equal(r.startStep, 3, 'resumed from the previous valid checkpoint');
    assert.equal(r.skipped, 1);
    assert.equal(r.step, 8);
    const names = readdirSync(join(dir, 'checkpoints'));
    assert.ok(names.some((n) => n.startsWith('.invalid-step-000006-')), 'the bad one is set aside, not deleted');
    assert.ok(names.includes('step-000006') && names.includes('step-000008'));
    assert.match(readFileSync(join(dir, 'train_progress.log'), 'utf8'), /step-000006 is not valid[^]*resuming from .*step-000003/);
  });
}

test('keep_last keeps the newest checkpoints and refuses fewer than 2', async (t) => {
  const dir = join(tmp(t), 'run');
  await train({ dir, steps: 7, saveEvery: 1, keepLast: 3, size: 4 });
  assert.deepEqual(readdirSync(join(dir, 'checkpoints')).sort(), ['step-000005', 'step-000006', 'step-000007']);
  await assert.rejects(pruneCheckpoints(join(dir, 'checkpoints'), 1, 7), /keep_last must be an integer >= 2/);
  await assert.rejects(train({ dir: join(dir, 'x'), steps: 1, keepLast: 1 }), /keep_last must be an integer >= 2/);
});

test('leftovers of a crash mid-write are cleaned; a checkpoint set aside mid-replacement is restored', async (t) => {
  const dir = join(tmp(t), 'run');
  await train({ dir, steps: 6, saveEvery: 3, size: 4 });
  const ck = join(dir, 'checkpoints');
  mkdirSync(join(ck, '.tmp-step-000009-1-2'));
  writeFileSync(join(ck, '.tmp-step-000009-1-2', 'model.safetensors'), 'partial');
  renameSync(join(ck, 'step-000006'), join(ck, '.old-step-000006-1-2'));
  const r = await train({ dir, steps: 7, saveEvery: 3, size: 4, resume: true });
  assert.equal(r.startStep, 6);
  assert.deepEqual(readdirSync(ck).sort(), ['step-000006', 'step-000007']);
});

test('an unwritable checkpoints directory gives a clear error naming it and leaves earlier checkpoints intact', async (t) => {
  const root = tmp(t);
  chmodSync(root, 0o755);
  const dir = join(root, 'run');
  await train({ dir, steps: 4, saveEvery: 2, size: 4 });
  const ck = join(dir, 'checkpoints');
  const before = Object.fromEntries(readdirSync(ck).map((n) => [n, readdirSync(join(ck, n)).map((f) => readFileSync(join(ck, n, f)).toString('hex')).join()]));
  // root ignores permission bits: the resuming child drops to nobody, owning the run but not
  // checkpoints/. It drops them after its imports, so the checkout (dist/, the addon, the
  // fixture) need not be readable by nobody: a clone under a 0700 directory works too.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    for (const n of readdirSync(dir)) if (n !== 'checkpoints') chownSync(join(dir, n), 65534, 65534);
    chownSync(dir, 65534, 65534);
  }
  chmodSync(ck, 0o555);
  const script = `import { train } from ${JSON.stringify(join(here, 'fixtures', 'run-loop.mjs'))};
    if (${asRoot}) { process.setgroups([]); process.setgid(65534); process.setuid(65534); }
    try { await train({ dir: ${JSON.stringify(dir)}, steps: 6, saveEvery: 2, size: 4, resume: true }); console.log('saved?'); }
    catch (e) { console.log(e.name + ': ' + e.message); process.exit(3); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 3, r.stdout + r.stderr);
  assert.match(r.stdout, /RunError: .*checkpoints.*cannot write checkpoint step-000006: EACCES.*permission denied: is the run directory writable\?/);
  chmodSync(ck, 0o755);
  const after = Object.fromEntries(readdirSync(ck).map((n) => [n, readdirSync(join(ck, n)).map((f) => readFileSync(join(ck, n, f)).toString('hex')).join()]));
  assert.deepEqual(after, before, 'earlier checkpoints untouched, nothing else created');
  assert.equal((await checkCheckpoint(join(ck, 'step-000004'))).valid, true);
});
