// Every reader is bounded by its input (#30): a hostile file must be refused before the
// reader allocates more than a small multiple of the file's size. The zip bomb of the issue
// (a ~1 MB .npz whose member claims 1e9x4x4 float32 and whose deflate data inflates to
// 1 GiB of zeros) is built here at test time, streamed (never 1 GiB in memory), and loaded
// in a child process whose peak RSS (VmHWM) is compared with its baseline. Nothing here
// depends on speed: the bounds are on memory and on the error's words.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as Z, deflateRawSync } from 'node:zlib';
import { crc32 } from '../dist/formats/crc.js';
import { FormatError, decodeNpz, encodeNpz } from '../dist/formats/index.js';
import { readZip, writeZip } from '../dist/formats/zip.js';
import { tempDir } from './helpers/temp-dir.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MiB = 1 << 20;
const GiB = 1 << 30;
/** The child may grow its peak RSS by at most this much over its own baseline. */
const PEAK_BOUND = 200 * MiB;

const enc = new TextEncoder();

/** A v1 .npy header (magic, version, length, dict padded to 64 bytes) claiming `shape` of <f4. */
function npyHeader(shape) {
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const out = new Uint8Array(total).fill(0x20);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, total - 10, true);
  out.set(enc.encode(dict), 10);
  out[total - 1] = 0x0a;
  return out;
}

/**
 * A raw deflate stream of `header` followed by `zeroMiB` MiB of zeros, as chunks: the header
 * and one MiB of zeros are each deflated once with a full flush (which resets the window, so
 * the MiB's compressed bytes can simply repeat), then an empty final block. Also the CRC32 of
 * the whole uncompressed member, computed a MiB at a time.
 */
function deflatedMember(header, zeroMiB) {
  const head = deflateRawSync(header, { finishFlush: Z.Z_FULL_FLUSH });
  const zeros = new Uint8Array(MiB);
  const mib = deflateRawSync(zeros, { finishFlush: Z.Z_FULL_FLUSH, level: 9 });
  const tail = deflateRawSync(new Uint8Array(0));
  let crc = crc32(header);
  for (let i = 0; i < zeroMiB; i++) crc = crc32(zeros, crc);
  const chunks = [head, ...Array.from({ length: zeroMiB }, () => mib), tail];
  return { chunks, csize: chunks.reduce((s, c) => s + c.length, 0), usize: header.length + zeroMiB * MiB, crc };
}

/**
 * Writes a one-member zip (zip64 sizes, so any declared size fits) to `path` chunk by chunk.
 * `declared` is the uncompressed size the central directory gives; `extra` adds further
 * central-directory entries that point at the same local header (the overlap trick).
 */
function writeZipFile(path, name, member, declared = member.usize, extraEntries = 0) {
  const nameBytes = enc.encode(name);
  const fd = openSync(path, 'w');
  let pos = 0;
  const put = (b) => { writeSync(fd, b); pos += b.length; };
  const local = new Uint8Array(30 + nameBytes.length + 20);
  const l = new DataView(local.buffer);
  l.setUint32(0, 0x04034b50, true);
  l.setUint16(4, 45, true);
  l.setUint16(8, 8, true); // deflate
  l.setUint32(14, member.crc, true);
  l.setUint32(18, 0xffffffff, true);
  l.setUint32(22, 0xffffffff, true);
  l.setUint16(26, nameBytes.length, true);
  l.setUint16(28, 20, true);
  local.set(nameBytes, 30);
  l.setUint16(30 + nameBytes.length, 1, true);
  l.setUint16(32 + nameBytes.length, 16, true);
  l.setBigUint64(34 + nameBytes.length, BigInt(declared), true);
  l.setBigUint64(42 + nameBytes.length, BigInt(member.csize), true);
  put(local);
  for (const c of member.chunks) put(c);
  const cdOffset = pos;
  for (let i = 0; i <= extraEntries; i++) {
    const entryName = i === 0 ? nameBytes : enc.encode(`${i}${name}`);
    const cen = new Uint8Array(46 + entryName.length + 28);
    const c = new DataView(cen.buffer);
    c.setUint32(0, 0x02014b50, true);
    c.setUint16(4, 45, true);
    c.setUint16(6, 45, true);
    c.setUint16(10, 8, true);
    c.setUint32(16, member.crc, true);
    c.setUint32(20, 0xffffffff, true);
    c.setUint32(24, 0xffffffff, true);
    c.setUint16(28, entryName.length, true);
    c.setUint16(30, 28, true);
    c.setUint32(42, 0xffffffff, true);
    cen.set(entryName, 46);
    c.setUint16(46 + entryName.length, 1, true);
    c.setUint16(48 + entryName.length, 24, true);
    c.setBigUint64(50 + entryName.length, BigInt(declared), true);
    c.setBigUint64(58 + entryName.length, BigInt(member.csize), true);
    c.setBigUint64(66 + entryName.length, 0n, true);
    put(cen);
  }
  const cdSize = pos - cdOffset;
  const count = extraEntries + 1;
  const tail = new Uint8Array(56 + 20 + 22);
  const t = new DataView(tail.buffer);
  t.setUint32(0, 0x06064b50, true);
  t.setBigUint64(4, 44n, true);
  t.setUint16(12, 45, true);
  t.setUint16(14, 45, true);
  t.setBigUint64(24, BigInt(count), true);
  t.setBigUint64(32, BigInt(count), true);
  t.setBigUint64(40, BigInt(cdSize), true);
  t.setBigUint64(48, BigInt(cdOffset), true);
  t.setUint32(56, 0x07064b50, true);
  t.setBigUint64(64, BigInt(cdOffset + cdSize), true);
  t.setUint32(72, 1, true);
  t.setUint32(76, 0x06054b50, true);
  t.setUint16(84, 0xffff, true);
  t.setUint16(86, 0xffff, true);
  t.setUint32(88, 0xffffffff, true);
  t.setUint32(92, 0xffffffff, true);
  put(tail);
  closeSync(fd);
  return statSync(path).size;
}

// The child: baseline VmHWM after imports, then readNpzFile, then VmHWM again; prints JSON.
const CHILD = `
import { readFileSync } from 'node:fs';
const hwm = () => Number(/VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const { readNpzFile } = await import(process.argv[1]);
const before = hwm();
let error = null, ok = false;
try { await readNpzFile(process.argv[2]); ok = true; } catch (e) { error = { name: e.name, message: e.message, field: e.field ?? null, file: e.file ?? null }; }
console.log(JSON.stringify({ before, after: hwm(), ok, error }));
`;

function loadInChild(path) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, join(ROOT, 'dist/formats/npz.js'), path], { encoding: 'utf8', maxBuffer: 1 << 20 });
  assert.equal(r.status, 0, `child failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  return { ...out, grew: out.after - out.before };
}

const mb = (n) => `${(n / MiB).toFixed(1)} MiB`;
const BOMB_SHAPE = [1000000000, 4, 4];
const BOMB_BYTES = 1000000000 * 4 * 4 * 4;
const haveProc = (() => { try { statSync('/proc/self/status'); return true; } catch { return false; } })();

test('the issue\'s npz bomb (header claims 1e9x4x4 f32, deflate data inflates to 1 GiB) is refused with peak memory near the file\'s size', { skip: !haveProc && 'needs /proc/self/status' }, (t) => {
  const dir = tempDir(t, 'craftgrad-bomb-');
  const header = npyHeader(BOMB_SHAPE);
  const member = deflatedMember(header, GiB / MiB);
  // The directory tells the truth about the data (header + 1 GiB), which the deflate bound
  // allows: the npy header's claim is what gives it away.
  assert.ok(member.usize <= 1032 * member.csize, 'precondition: the directory\'s size passes the deflate bound, so only the header check can refuse it');
  const path = join(dir, 'bomb.npz');
  const size = writeZipFile(path, 'weights.npy', member);
  assert.ok(size < 2 * MiB, `the bomb is ${size} bytes`);
  const r = loadInChild(path);
  t.diagnostic(`bomb file ${size} bytes; child peak RSS ${mb(r.after)} (baseline ${mb(r.before)}, grew ${mb(r.grew)})`);
  assert.equal(r.ok, false, 'the bomb must be refused');
  assert.equal(r.error.name, 'FormatError');
  assert.ok(r.error.message.includes(path), r.error.message);
  assert.match(r.error.message, /weights\.npy/);
  assert.match(r.error.message, /shape \(1000000000, 4, 4\)/);
  assert.match(r.error.message, /central directory/);
  assert.ok(r.grew < PEAK_BOUND, `peak RSS grew by ${mb(r.grew)} reading a ${size}-byte file (bound ${mb(PEAK_BOUND)})`);
});

test('a consistent npz bomb (header and directory agree on 16 GB from 1 MB of deflate data) is refused before inflating', { skip: !haveProc && 'needs /proc/self/status' }, (t) => {
  const dir = tempDir(t, 'craftgrad-bomb-');
  const header = npyHeader(BOMB_SHAPE);
  const member = deflatedMember(header, GiB / MiB);
  const path = join(dir, 'consistent.npz');
  const size = writeZipFile(path, 'weights.npy', member, header.length + BOMB_BYTES);
  const r = loadInChild(path);
  t.diagnostic(`consistent bomb ${size} bytes; child peak RSS grew ${mb(r.grew)}`);
  assert.equal(r.ok, false);
  assert.ok(r.error.message.includes(path), r.error.message);
  assert.match(r.error.message, /entry "weights\.npy"/);
  assert.match(r.error.message, /impossible for deflate/);
  assert.ok(r.grew < PEAK_BOUND, `peak RSS grew by ${mb(r.grew)} (bound ${mb(PEAK_BOUND)})`);
});

test('a member that inflates past its declared size is refused at the declared size, not after inflating it all', { skip: !haveProc && 'needs /proc/self/status' }, (t) => {
  const dir = tempDir(t, 'craftgrad-bomb-');
  // Header and directory agree on 16 floats; the deflate data goes on for 1 GiB.
  const header = npyHeader([16]);
  const member = deflatedMember(header, GiB / MiB);
  const path = join(dir, 'overrun.npz');
  writeZipFile(path, 'w.npy', member, header.length + 64);
  const r = loadInChild(path);
  t.diagnostic(`overrun: child peak RSS grew ${mb(r.grew)}`);
  assert.equal(r.ok, false);
  assert.ok(r.error.message.includes(path), r.error.message);
  assert.match(r.error.message, /entry "w\.npy"/);
  assert.match(r.error.message, /inflates past its declared size/);
  assert.ok(r.grew < PEAK_BOUND, `peak RSS grew by ${mb(r.grew)} (bound ${mb(PEAK_BOUND)})`);
});

test('zip entries whose data overlap (one deflate stream counted many times) are refused', (t) => {
  const dir = tempDir(t, 'craftgrad-bomb-');
  const header = npyHeader([16]);
  const member = deflatedMember(header, 0);
  member.usize = header.length; // no zeros: a tiny, honest member...
  const path = join(dir, 'overlap.npz');
  writeZipFile(path, 'a.npy', member, header.length, 3); // ...listed four times
  const bytes = new Uint8Array(readFileSync(path));
  assert.throws(() => readZip(bytes, { source: path }), (e) => e instanceof FormatError && e.message.includes(path) && /entry "1a\.npy".*overlap entry "a\.npy"/.test(e.message));
});

test('an npz member whose npy header and central directory disagree is refused, naming both', () => {
  // (4,) float32 written honestly, then the header edited to claim (5,): same length.
  const good = encodeNpz({ w: { dtype: 'F32', shape: [4], data: new Float32Array(4) } }, { compress: true });
  assert.equal(decodeNpz(good).w.shape[0], 4);
  const npy = npyHeader([5]);
  const data = new Uint8Array(npy.length + 16);
  data.set(npy);
  const zip = writeZip([{ name: 'w.npy', data }], { compress: true });
  assert.throws(() => decodeNpz(zip, { source: 'x.npz' }), (e) => e instanceof FormatError
    && /x\.npz/.test(e.message) && /entry "w\.npy"/.test(e.message) && /shape \(5\)/.test(e.message) && /central directory says/.test(e.message));
});

test('zipMemberPrefix inflates only the first bytes, equal to the whole member\'s, for streams of any ratio', async () => {
  const { listZip, zipMemberPrefix, zipMemberData } = await import('../dist/formats/zip.js');
  let seed = 7;
  const rand = () => { seed = (seed * 1103515245 + 12345) >>> 0; return seed >>> 24; };
  const noise = Uint8Array.from({ length: 300000 }, rand);
  const mixed = new Uint8Array(3 << 20);
  mixed.set(noise.subarray(0, 1000), 0);
  mixed.set(noise.subarray(0, 5000), 2 << 20); // zeros, then noise far in
  const zip = writeZip([{ name: 'zeros', data: new Uint8Array(4 << 20) }, { name: 'noise', data: noise }, { name: 'mixed', data: mixed }], { compress: true });
  const members = listZip(zip);
  for (const m of members) {
    const whole = zipMemberData(zip, m);
    for (const n of [0, 1, 12, 100, 70000, (2 << 20) + 10, whole.length, whole.length + 5]) {
      const p = zipMemberPrefix(zip, m, n);
      assert.equal(p.length, Math.min(n, whole.length), `${m.name} prefix ${n}`);
      assert.ok(p.every((b, i) => b === whole[i]), `${m.name} prefix ${n} differs from the member's first bytes`);
    }
  }
});

// Text files parsed whole are refused by size before a byte is read. The oversized files are
// sparse (truncate), so the test writes nothing: a reader that read them first would still
// fail the assertion on the error's words (and take the file's size in memory).
test('JSON, YAML and tokenizer files past their cap are refused before reading, naming the file and its size', async (t) => {
  const { truncateSync, mkdirSync, writeFileSync } = await import('node:fs');
  const { JSON_FILE_MAX_BYTES, TOKENIZER_FILE_MAX_BYTES, OPTIONS_FILE_MAX_BYTES, readTextFile } = await import('../dist/formats/fileio.js');
  const { readJsonFile } = await import('../dist/model/hf-weights.js');
  const { readHfConfig } = await import('../dist/model/qwen2/hf-directory.js');
  const { readDatasetStatistics } = await import('../dist/data/rlds/statistics.js');
  const { TfdsDataset } = await import('../dist/data/rlds/tfds.js');
  const { loadPromptTokenizer } = await import('../dist/data/rlds/prompt.js');
  const { readOptionsFile } = await import('../dist/cli/config-file.js');
  const { checkCheckpoint } = await import('../dist/run/checkpoint-read.js');
  const dir = tempDir(t, 'craftgrad-caps-');
  const sparse = (path, size) => { writeFileSync(path, '{}'); truncateSync(path, size); return path; };
  const capError = (path, cap) => (e) => {
    assert.ok(e.message.includes(path), `the error names the file: ${e.message}`);
    assert.ok(e.message.includes(String(cap + 1)) && e.message.includes(`${cap}-byte cap`), `the error gives the size and the cap: ${e.message}`);
    return true;
  };

  // The helper itself, at the cap and one byte past it.
  const atCap = sparse(join(dir, 'at-cap.json'), 1000);
  assert.equal((await readTextFile(atCap, 'json', 1000)).length, 1000);
  await assert.rejects(readTextFile(atCap, 'json', 999), (e) => e instanceof FormatError && e.field === 'file size' && capError(atCap, 999)(e));

  const big = sparse(join(dir, 'config.json'), JSON_FILE_MAX_BYTES + 1);
  await assert.rejects(readJsonFile(big), (e) => e instanceof FormatError && capError(big, JSON_FILE_MAX_BYTES)(e));
  await assert.rejects(readHfConfig(dir), (e) => e instanceof FormatError && capError(big, JSON_FILE_MAX_BYTES)(e));

  const stats = sparse(join(dir, 'stats.json'), JSON_FILE_MAX_BYTES + 1);
  await assert.rejects(readDatasetStatistics(stats, {}), (e) => e instanceof FormatError && capError(stats, JSON_FILE_MAX_BYTES)(e));

  const tfds = join(dir, 'tfds');
  mkdirSync(tfds);
  const info = sparse(join(tfds, 'dataset_info.json'), JSON_FILE_MAX_BYTES + 1);
  await assert.rejects(TfdsDataset.open(tfds), (e) => e instanceof FormatError && capError(info, JSON_FILE_MAX_BYTES)(e));

  const tokDir = join(dir, 'tok');
  mkdirSync(tokDir);
  const tj = sparse(join(tokDir, 'tokenizer.json'), TOKENIZER_FILE_MAX_BYTES + 1);
  await assert.rejects(loadPromptTokenizer(tokDir), (e) => e instanceof FormatError && capError(tj, TOKENIZER_FILE_MAX_BYTES)(e));

  for (const ext of ['yaml', 'json']) {
    const opts = sparse(join(dir, `run.${ext}`), OPTIONS_FILE_MAX_BYTES + 1);
    assert.throws(() => readOptionsFile(opts), (e) => e.name === 'UsageError' && /^--config /.test(e.message) && capError(opts, OPTIONS_FILE_MAX_BYTES)(e));
  }

  const ck = join(dir, 'step-00000001');
  mkdirSync(ck);
  const manifest = sparse(join(ck, 'manifest.json'), JSON_FILE_MAX_BYTES + 1);
  const r = await checkCheckpoint(ck, { anyName: true });
  assert.equal(r.valid, false);
  assert.ok(r.problems.some((p) => capError(manifest, JSON_FILE_MAX_BYTES)({ message: p })), r.problems.join('\n'));
});

test('a .pt whose data.pkl only builds objects is refused once it passes TORCH_PT_MAX_OBJECTS, not at the end of the pickle', async () => {
  const { decodeTorchPt, TORCH_PT_MAX_OBJECTS } = await import('../dist/formats/torch-pt.js');
  // 8 MiB of EMPTY_DICT: each byte would be a ~200-byte Map (1.7 GB in all).
  const pkl = new Uint8Array(8 << 20).fill(0x7d);
  pkl.set([0x80, 2]);
  const zip = writeZip([{ name: 'a/data.pkl', data: pkl }]);
  let error;
  try { decodeTorchPt(zip, { source: 'dicts.pt' }); } catch (e) { error = e; }
  assert.ok(error instanceof FormatError, String(error));
  assert.match(error.message, /dicts\.pt/);
  assert.match(error.message, /a\/data\.pkl byte \d+/);
  assert.match(error.message, new RegExp(`more than ${TORCH_PT_MAX_OBJECTS} units of objects`));
  // A dict is 4 units: it stopped after TORCH_PT_MAX_OBJECTS / 4 of them.
  const at = Number(/byte (\d+)/.exec(error.message)[1]);
  assert.equal(at, 2 + TORCH_PT_MAX_OBJECTS / 4);
});

test('an Example of more than EXAMPLE_MAX_PIECES empty bytes values (2 input bytes, one view object each) is refused', async () => {
  const { decodeExample, ExampleDecodeError, EXAMPLE_MAX_PIECES } = await import('../dist/data/rlds/example.js');
  const varint = (n) => { const out = []; while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); } out.push(n); return out; };
  const field = (num, body) => { const head = [(num << 3) | 2, ...varint(body.length)]; const out = new Uint8Array(head.length + body.length); out.set(head); out.set(body, head.length); return out; };
  const example = (count) => {
    const list = new Uint8Array(2 * count);
    for (let i = 0; i < list.length; i += 2) list[i] = 0x0a; // value = b''
    const feature = field(1, list); // Feature.bytes_list
    const entry = new Uint8Array([...field(1, enc.encode('k')), ...field(2, feature)]);
    return field(1, field(1, entry)); // Example.features.feature[]
  };
  // One piece is the map entry itself: EXAMPLE_MAX_PIECES - 1 values still decode...
  const ok = decodeExample(example(EXAMPLE_MAX_PIECES - 1));
  assert.equal(ok.get('k').values.length, EXAMPLE_MAX_PIECES - 1);
  // ...one more is refused, naming the feature.
  assert.throws(() => decodeExample(example(EXAMPLE_MAX_PIECES)), (e) => e instanceof ExampleDecodeError
    && /feature 'k'/.test(e.message) && new RegExp(`more than ${EXAMPLE_MAX_PIECES}`).test(e.message));
});
