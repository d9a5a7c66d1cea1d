// Samples from RLDS episodes (src/data/rlds, issue #28), each step against an independent
// computation: numpy in /usr/bin/python3 for LIBERO's transform, the statistics (upstream's own
// numpy calls), BOUNDS_Q99 (TensorFlow's float32 / float64 steps written out in numpy),
// chunk_act_obs's indices and dataset_statistics.json (python's json.dumps, byte for byte); an
// independent Python byte-level BPE (test/helpers/qwen2_bpe_reference.py) for the prompt ids.
import { writeTinyQwen2 } from './helpers/tiny-qwen2-tokenizer.mjs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  LIBERO, liberoDatasetTransform, checkEpisode, chunkActObsIndices, arrayStatistics, quantileLinear,
  computeDatasetStatistics, datasetStatisticsJson, writeDatasetStatistics, readDatasetStatistics,
  parseDatasetStatistics, normalizeBoundsQ99, pythonFloatRepr, vlaAdapterPromptText, loadPromptTokenizer,
  promptInputIds, actionTokenBeginIdx, actionPlaceholderId, NUM_ACTION_TOKENS, buildRldsSamples,
  splitRldsSamples, shotsPerTask, layoutInputIds,
} from '../dist/data/rlds/index.js';
import { tempDir } from './helpers/temp-dir.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const PYTHON = '/usr/bin/python3';
const havePython = (() => {
  try {
    execFileSync(PYTHON, ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
// The BPE reference uses the `regex` module where an interpreter has it, else Python's re with
// \\p{L} / \\p{N} spelled out from unicodedata (qwen2_bpe_reference.py).
const BPE_PYTHON = ['/usr/bin/python3', 'python3'].find((p) => {
  try {
    execFileSync(p, ['-c', 'import regex'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}) ?? (havePython ? PYTHON : null);
const haveRegex = BPE_PYTHON !== null;
const noPy = havePython ? false : 'no /usr/bin/python3 with numpy';

const b64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const f32 = (s) => { const b = Buffer.from(s, 'base64'); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); };

function py(code, input) {
  const prelude = 'import base64, json, sys\nimport numpy as np\n' +
    'def arr(s, shape): return np.frombuffer(base64.b64decode(s), dtype=np.float32).reshape(shape).copy()\n' +
    'def b64(a): return base64.b64encode(np.ascontiguousarray(a, dtype=np.float32).tobytes()).decode()\n' +
    'd = json.load(sys.stdin)\n';
  return JSON.parse(execFileSync(PYTHON, ['-c', prelude + code], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 1 << 28 }));
}

// A seeded generator (mulberry32).
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * LIBERO-like episodes: 7-dim actions (deltas, gripper ±1 with a few values in between), 8-dim
 * states whose dim 6 is constant (min == max) and dim 7 mostly one value with rare outliers
 * (q01 == q99 but min != max).
 */
function makeEpisodes(seed, lengths, instructions) {
  const r = rng(seed);
  return lengths.map((T, e) => {
    const action = new Float32Array(T * 7), state = new Float32Array(T * 8);
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < 6; d++) action[t * 7 + d] = (r() * 2 - 1) * (d + 1) * 0.3;
      const u = r();
      action[t * 7 + 6] = u < 0.45 ? -1 : u < 0.9 ? 1 : r() * 2 - 1;
      for (let d = 0; d < 6; d++) state[t * 8 + d] = (r() - 0.5) * 10 ** (d - 2);
      state[t * 8 + 6] = 0.25;
      state[t * 8 + 7] = r() < 0.005 ? 3 : 0.04;
    }
    return { steps: T, state, stateDim: 8, action, actionDim: 7, language: instructions[e % instructions.length], where: `record ${e}` };
  });
}

const TASKS = ['Pick up the black bowl and place it on the plate', 'open the top drawer of the cabinet', 'put both the cream cheese box and the butter in the basket'];

test('LIBERO transform: gripper clipped to [0, 1] and inverted in float32, proprio = state[:6] ++ state[-2:] (numpy)', { skip: noPy }, () => {
  const [ep] = makeEpisodes(1, [40], TASKS);
  ep.action[6] = 0.3; ep.action[13] = -0.7; ep.action[20] = 1e-9; ep.action[27] = 0.999999;
  const s = liberoDatasetTransform(ep);
  const want = py(`
a = arr(d['a'], (40, 7)); s = arr(d['s'], (40, 8))
g = np.clip(a[:, -1:], np.float32(0), np.float32(1)).astype(np.float32)
g = (np.float32(1) - g).astype(np.float32)
act = np.concatenate([a[:, :6], g], axis=1)
pro = np.concatenate([s[:, :6], s[:, -2:]], axis=1).astype(np.float32)
print(json.dumps({'a': b64(act), 'p': b64(pro)}))`, { a: b64(ep.action), s: b64(ep.state) });
  assert.deepEqual(Array.from(s.action), Array.from(f32(want.a)));
  assert.deepEqual(Array.from(s.proprio), Array.from(f32(want.p)));
  assert.equal(s.actionDim, 7);
  assert.equal(s.proprioDim, 8);
  assert.equal(s.action[6], Math.fround(1 - 0.3));
  assert.equal(s.action[13], 1);
});

test('chunk_act_obs indices: starts 0 … T − 8, actions t … t + 7, floored at 0 and clamped at T − 1 (numpy of the tf code)', { skip: noPy }, () => {
  const cases = [[1, 7, 20], [1, 7, 8], [1, 7, 7], [1, 7, 3], [3, 2, 9], [2, 0, 5], [1, 0, 4], [4, 5, 6]];
  const want = py(`
out = []
for w, f, T in d:
    eff = T - f
    if eff <= 0:
        out.append({'starts': 0, 'obs': [], 'act': []}); continue
    ci = np.arange(-w + 1, 1)[None, :] + np.arange(eff)[:, None]
    ai = np.arange(-w + 1, 1 + f)[None, :] + np.arange(eff)[:, None]
    out.append({'starts': int(eff), 'obs': np.maximum(ci, 0).ravel().tolist(), 'act': np.minimum(np.maximum(ai, 0), T - 1).ravel().tolist()})
print(json.dumps(out))`, cases);
  cases.forEach(([w, f, T], i) => {
    const got = chunkActObsIndices(T, w, f);
    assert.equal(got.starts, want[i].starts, `w ${w} f ${f} T ${T}`);
    assert.deepEqual(Array.from(got.observation), want[i].obs);
    assert.deepEqual(Array.from(got.action), want[i].act);
  });
  // The clamp at the end takes effect only where the start range allows it (never at window 1).
  const c = chunkActObsIndices(10, 4, 2);
  assert.equal(c.action[c.action.length - 1], 9);
  assert.throws(() => chunkActObsIndices(5, 0, 7), /windowSize/);
});

test('statistics: mean/std/max/min as numpy computes them on float32, q01/q99 as np.quantile (numpy 1.x, float64 lerp)', { skip: noPy }, () => {
  const r = rng(7);
  const sizes = [1, 2, 3, 100, 101, 1234];
  const inputs = sizes.map((N) => {
    const a = new Float32Array(N * 5);
    for (let i = 0; i < a.length; i++) a[i] = i % 5 === 4 ? (r() < 0.5 ? -1 : 1) : (r() - 0.3) * 10 ** ((i % 5) - 2);
    return a;
  });
  const want = py(`
out = []
major = int(np.__version__.split('.')[0])
for s, N in zip(d['a'], d['n']):
    a = arr(s, (N, 5))
    m = {
      'mean': a.mean(0).tolist(), 'std': a.std(0).tolist(), 'max': a.max(0).tolist(), 'min': a.min(0).tolist(),
      # numpy 1.x's float64 lerp (upstream's numpy), through numpy 2's non-weak q:
      'q01': np.quantile(a, np.float64(0.01), axis=0).tolist(), 'q99': np.quantile(a, np.float64(0.99), axis=0).tolist(),
      # upstream's call verbatim (data_utils.py:238): exact on numpy 1.x, float32-rounded lerp on numpy 2
      'q01_call': np.quantile(a, 0.01, axis=0).tolist(), 'q99_call': np.quantile(a, 0.99, axis=0).tolist(),
    }
    out.append(m)
print(json.dumps({'major': major, 'stats': out}))`, { a: inputs.map(b64), n: sizes });
  sizes.forEach((N, i) => {
    const got = arrayStatistics(inputs[i], N, 5);
    const w = want.stats[i];
    for (const k of ['mean', 'std', 'max', 'min', 'q01', 'q99']) assert.deepEqual(got[k], w[k], `N ${N} ${k}`);
    for (const k of ['q01', 'q99']) {
      if (want.major < 2) assert.deepEqual(got[k], w[`${k}_call`]);
      else got[k].forEach((v, d) => assert.equal(Math.fround(v), Math.fround(w[`${k}_call`][d]), `N ${N} ${k}[${d}] float32`));
    }
  });
  // By hand: n = 101 puts q01 exactly on x[1]; n = 3 interpolates.
  assert.equal(quantileLinear(Float32Array.from({ length: 101 }, (_, i) => i), 0.01), 1);
  assert.equal(quantileLinear(Float32Array.from([0, 10, 20]), 0.99), 20 - 10 * (1 - 0.98));
  assert.equal(quantileLinear(Float32Array.from([5]), 0.99), 5);
});

test('BOUNDS_Q99: float32 as tf computes it, the mask, min == max → 0, q99 == q01 → ±1 (numpy of the tf ops)', { skip: noPy }, () => {
  const r = rng(3);
  const N = 64, D = 6;
  const x = new Float32Array(N * D);
  for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * 3;
  for (let n = 0; n < N; n++) { x[n * D + 2] = 0.5; x[n * D + 3] = n % 3 === 0 ? 0.1 : n % 3 === 1 ? 0.2 : 0.3; }
  const stats = {
    q01: [-1.2345678901234, -0.7, 0.5, 0.2, -0.3, 0.1], q99: [1.1, 0.9, 0.5, 0.2, 0.3, 0.1 + 1e-12],
    min: [-1.5, -1, 0.5, 0.1, -2, 0.1], max: [1.5, 1, 0.5, 0.3, 2, 0.1],
  };
  const mask = [true, true, true, true, false, true];
  const got = normalizeBoundsQ99(Float32Array.from(x), D, stats, mask);
  const want = py(`
x = arr(d['x'], (${N}, ${D}))
low = np.array(d['s']['q01']); high = np.array(d['s']['q99']); mask = np.array(d['m'])
lo32 = low.astype(np.float32); den = (high - low + 1e-8).astype(np.float32)
y = (np.float32(2) * (x - lo32)).astype(np.float32) / den
y = np.clip((y - np.float32(1)).astype(np.float32), -1, 1).astype(np.float32)
y = np.where(mask, y, x)
y = np.where(np.array(d['s']['min']) == np.array(d['s']['max']), np.float32(0), y).astype(np.float32)
print(json.dumps({'y': b64(y)}))`, { x: b64(x), s: stats, m: mask });
  assert.deepEqual(Array.from(got), Array.from(f32(want.y)));
  for (let n = 0; n < N; n++) {
    assert.equal(got[n * D + 2], 0, 'min == max on a normalised dim → 0');
    assert.equal(got[n * D + 3], n % 3 === 0 ? -1 : n % 3 === 1 ? -1 : 1, 'q99 == q01: −1 at and below, +1 above');
    assert.equal(got[n * D + 4], x[n * D + 4], 'masked dim passes through');
  }
  // Without a mask (proprio): every dim normalised.
  const all = normalizeBoundsQ99(Float32Array.from(x), D, stats);
  assert.notEqual(all[4], x[4]);
  assert.throws(() => normalizeBoundsQ99(new Float32Array(7), D, stats), /whole number of rows/);
});

test("dataset_statistics.json: python's json.dumps(indent=2) byte for byte, read back by json with upstream's keys", { skip: noPy }, (t) => {
  const dir = tempDir(t, 'rlds-stats-');
  const eps = makeEpisodes(11, [30, 45, 12], TASKS).map((e, i) => liberoDatasetTransform(e, i));
  const stats = computeDatasetStatistics(eps);
  stats.action.mask = [...LIBERO.actionMask];
  const file = join(dir, 'dataset_statistics.json');
  writeFileSync(file, datasetStatisticsJson({ libero_spatial_no_noops: stats }));
  const want = py(`
A = np.concatenate([arr(s, (-1, 7)) for s in d['a']]); P = np.concatenate([arr(s, (-1, 8)) for s in d['p']])
def st(x): return {'mean': x.mean(0).tolist(), 'std': x.std(0).tolist(), 'max': x.max(0).tolist(), 'min': x.min(0).tolist(),
    'q01': np.quantile(x, np.float64(0.01), axis=0).tolist(), 'q99': np.quantile(x, np.float64(0.99), axis=0).tolist()}
meta = {'action': st(A), 'proprio': st(P), 'num_transitions': int(A.shape[0]), 'num_trajectories': len(d['a'])}
meta['action']['mask'] = np.array([True] * 6 + [False]).tolist()
text = json.dumps({'libero_spatial_no_noops': meta}, indent=2)
back = json.load(open(d['file']))
e = back['libero_spatial_no_noops']
print(json.dumps({'same': text == open(d['file']).read(), 'keys': list(e.keys()), 'akeys': list(e['action'].keys()), 'pkeys': list(e['proprio'].keys()),
  'equal': back == {'libero_spatial_no_noops': meta}}))`, { a: eps.map((e) => b64(e.action)), p: eps.map((e) => b64(e.proprio)), file });
  assert.deepEqual(want.keys, ['action', 'proprio', 'num_transitions', 'num_trajectories']);
  assert.deepEqual(want.akeys, ['mean', 'std', 'max', 'min', 'q01', 'q99', 'mask']);
  assert.deepEqual(want.pkeys, ['mean', 'std', 'max', 'min', 'q01', 'q99']);
  assert.ok(want.equal, 'python reads back the values it computes');
  assert.ok(want.same, 'the file is what json.dump(indent=2) writes');
  assert.equal(pythonFloatRepr(1e-5), '1e-05');
  assert.equal(pythonFloatRepr(12345678901234567890), '1.2345678901234567e+19');
  assert.equal(pythonFloatRepr(-3), '-3.0');
  assert.equal(pythonFloatRepr(0.0001), '0.0001');
});

test('statistics files: both upstream layouts read; other dimensions, a bad mask and bad values refused in one line naming file and field', async (t) => {
  const dir = tempDir(t, 'rlds-stats-read-');
  const eps = makeEpisodes(5, [20, 20], TASKS).map((e, i) => liberoDatasetTransform(e, i));
  const stats = computeDatasetStatistics(eps);
  const file = join(dir, 'dataset_statistics.json');
  await writeDatasetStatistics(file, { libero_goal_no_noops: { ...stats, action: { ...stats.action, mask: [...LIBERO.actionMask] } } });
  const want = { actionDim: 7, proprioDim: 8 };
  const got = await readDatasetStatistics(file, want);
  assert.equal(got.name, 'libero_goal_no_noops');
  assert.deepEqual(got.action.q01, stats.action.q01);
  assert.equal(got.num_transitions, 40);
  // Upstream's unwrapped dict (make_dataset_from_rlds's dataset_statistics path).
  const flat = parseDatasetStatistics(JSON.parse(JSON.stringify(stats)), 'flat.json', want);
  assert.equal(flat.name, null);
  assert.deepEqual(flat.proprio.q99, stats.proprio.q99);

  const bad = join(dir, 'other.json');
  const other = JSON.parse(readFileSync(file, 'utf8'));
  other.libero_goal_no_noops.action.q01.push(0);
  writeFileSync(bad, JSON.stringify(other));
  await assert.rejects(readDatasetStatistics(bad, want), (e) => {
    assert.equal(e.name, 'FormatError');
    assert.equal(e.message.split('\n').length, 1);
    assert.match(e.message, /other\.json/);
    assert.equal(e.field, 'libero_goal_no_noops.action.q01');
    assert.match(e.message, /8 values but the action has 7 dims/);
    return true;
  });
  await assert.rejects(readDatasetStatistics(file, { actionDim: 7, proprioDim: 14 }), (e) => e.field === 'libero_goal_no_noops.proprio.mean' && /dataset_statistics\.json.*8 values but the proprio state has 14 dims/.test(e.message));
  const two = { a: JSON.parse(JSON.stringify(stats)), b: JSON.parse(JSON.stringify(stats)) };
  assert.throws(() => parseDatasetStatistics(two, 'two.json', want), /entries for 'a', 'b'; name the dataset/);
  assert.equal(parseDatasetStatistics(two, 'two.json', { ...want, name: 'b' }).name, 'b');
  const nan = JSON.parse(JSON.stringify(stats));
  nan.action.q99[2] = 'x';
  assert.throws(() => parseDatasetStatistics(nan, 'nan.json', want), (e) => e.field === 'action.q99' && /entry 2/.test(e.message));
  await assert.rejects(readDatasetStatistics(join(dir, 'missing.json'), want), /missing\.json.*cannot read/);

  // Samples: a file whose action mask differs from LIBERO's is refused (upstream normalises with the dataset's).
  const masked = { ...stats, action: { ...stats.action, mask: [true, true, true, true, true, true, true] } };
  assert.throws(() => buildRldsSamples(makeEpisodes(5, [20], TASKS), { statistics: masked, statisticsFile: 'm.json' }),
    (e) => e.field === 'action.mask' && /m\.json/.test(e.message));
});

test('bad episodes: a NaN action names the episode, the step and the feature; empty and ragged episodes refused', () => {
  const eps = makeEpisodes(9, [12, 12, 12], TASKS);
  eps[2].action[3 * 7 + 4] = NaN;
  assert.throws(() => buildRldsSamples(eps), (e) => {
    assert.equal(e.name, 'FormatError');
    assert.equal(e.field, 'steps/action');
    assert.match(e.message, /episode 2 \(record 2\): step 3: action\[4\] is NaN/);
    assert.equal(e.message.split('\n').length, 1);
    return true;
  });
  const inf = makeEpisodes(9, [12], TASKS)[0];
  inf.state[5 * 8 + 1] = Infinity;
  assert.throws(() => checkEpisode(inf, 0), /episode 0 \(record 0\): step 5: state\[1\] is Infinity/);
  assert.throws(() => checkEpisode({ ...inf, steps: 0, action: new Float32Array(0), state: new Float32Array(0) }, 4), /episode 4.*empty/);
  assert.throws(() => checkEpisode({ ...inf, action: new Float32Array(11 * 7) }, 1), (e) => e.field === 'steps/action' && /12 × 7/.test(e.message));
  assert.throws(() => checkEpisode({ ...inf, language: ['a'] }, 1), (e) => e.field === 'steps/language_instruction');
  const six = makeEpisodes(9, [12], TASKS)[0];
  assert.throws(() => liberoDatasetTransform({ ...six, action: new Float32Array(12 * 6), actionDim: 6 }, 0), /at least 7 dims/);
  assert.throws(() => buildRldsSamples([]), /no episode/);
});

test('samples: normalised chunks and proprio equal an independent numpy pipeline (statistics computed, then from the file)', { skip: noPy }, (t) => {
  const lengths = [30, 7, 9, 25, 40, 8];
  const eps = makeEpisodes(21, lengths, TASKS);
  eps[3].language = Array.from({ length: 25 }, () => ''); // unlabelled: counted in the statistics, no sample
  const s = buildRldsSamples(eps);
  assert.equal(s.statisticsComputed, true);
  assert.equal(s.episodes, 6);
  assert.equal(s.skippedUnlabeled, 1);
  assert.equal(s.skippedShort, 1);
  assert.equal(s.size, (30 - 7) + (9 - 7) + (40 - 7) + (8 - 7));
  assert.equal(s.statistics.num_transitions, lengths.reduce((a, b) => a + b));
  assert.equal(s.statistics.num_trajectories, 6);
  assert.deepEqual(s.statistics.action.mask, LIBERO.actionMask);
  const want = py(`
A, P = [], []
for a, st in zip(d['a'], d['s']):
    a = arr(a, (-1, 7)); st = arr(st, (-1, 8))
    g = (np.float32(1) - np.clip(a[:, -1:], 0, 1)).astype(np.float32)
    A.append(np.concatenate([a[:, :6], g], 1)); P.append(np.concatenate([st[:, :6], st[:, -2:]], 1))
def st(x): return {'min': x.min(0).astype(np.float64), 'max': x.max(0).astype(np.float64),
    'q01': np.quantile(x, np.float64(0.01), axis=0), 'q99': np.quantile(x, np.float64(0.99), axis=0)}
SA, SP = st(np.concatenate(A)), st(np.concatenate(P))
def norm(x, s, mask):
    y = (np.float32(2) * (x - s['q01'].astype(np.float32))).astype(np.float32) / (s['q99'] - s['q01'] + 1e-8).astype(np.float32)
    y = np.clip((y - np.float32(1)).astype(np.float32), -1, 1)
    y = np.where(mask, y, x)
    return np.where(s['min'] == s['max'], np.float32(0), y).astype(np.float32)
acts, pros, ep, ts = [], [], [], []
for e, (a, p, lab) in enumerate(zip(A, P, d['labelled'])):
    a = norm(a, SA, np.array([True] * 6 + [False])); p = norm(p, SP, np.ones(8, bool))
    T = a.shape[0]
    if not lab: continue
    for t in range(T - 7):
        idx = np.minimum(np.arange(t, t + 8), T - 1)
        acts.append(a[idx]); pros.append(p[t]); ep.append(e); ts.append(t)
print(json.dumps({'a': b64(np.stack(acts)), 'p': b64(np.stack(pros)), 'ep': ep, 't': ts}))`,
  { a: eps.map((e) => b64(e.action)), s: eps.map((e) => b64(e.state)), labelled: eps.map((e) => typeof e.language === 'string') });
  assert.deepEqual(Array.from(s.actions), Array.from(f32(want.a)));
  assert.deepEqual(Array.from(s.proprio), Array.from(f32(want.p)));
  assert.deepEqual(Array.from(s.episode), want.ep);
  assert.deepEqual(Array.from(s.t), want.t);
  // proprio dim 6 is constant (min == max) → 0; the gripper action passes through as 1 / 0 / inverted.
  for (let n = 0; n < s.size; n++) assert.equal(s.proprio[n * 8 + 6], 0);
  // Kept episodes 0, 2, 4, 5 (1 is too short, 3 unlabelled): instructions in order of first appearance.
  assert.deepEqual(s.instructions, [TASKS[0], TASKS[2], TASKS[1]]);
  assert.deepEqual(Array.from(new Set(s.task)), [0, 1, 2]);

  // The same statistics from the file give the same samples; the file's mask is LIBERO's.
  const dir = tempDir(t, 'rlds-samples-');
  const file = join(dir, 'dataset_statistics.json');
  writeFileSync(file, datasetStatisticsJson({ libero_10_no_noops: s.statistics }));
  const read = parseDatasetStatistics(JSON.parse(readFileSync(file, 'utf8')), file, { actionDim: 7, proprioDim: 8 });
  const again = buildRldsSamples(eps, { statistics: read, statisticsFile: file });
  assert.equal(again.statisticsComputed, false);
  assert.deepEqual(Array.from(again.actions), Array.from(s.actions));
  assert.deepEqual(Array.from(again.proprio), Array.from(s.proprio));
  const seven = { ...read, proprio: { ...read.proprio, q01: read.proprio.q01.slice(1) } };
  assert.throws(() => buildRldsSamples(eps, { statistics: seven, statisticsFile: file }), (e) => e.field === 'proprio.q01' && e.message.includes(file));
});

test('splits: validation by held-out episodes, --shots-per-task by episodes per instruction', () => {
  const eps = makeEpisodes(4, Array.from({ length: 12 }, (_, i) => 12 + i), TASKS);
  const s = buildRldsSamples(eps);
  const { train, val } = splitRldsSamples(s, { valFraction: 0.25, seed: 3 });
  assert.equal(train.size + val.size, s.size);
  const trainEps = new Set(train.episode), valEps = new Set(val.episode);
  for (const e of valEps) assert.ok(!trainEps.has(e), `episode ${e} on both sides`);
  assert.equal(valEps.size, 3, 'one of the four episodes of each of the three tasks');
  for (const k of [0, 1, 2]) assert.ok([...valEps].some((e) => e % 3 === k));
  // Whole episodes: every step of a held-out episode is in val.
  for (const e of valEps) assert.equal(val.episode.filter((x) => x === e).length, (12 + e) - 7);
  const two = shotsPerTask(s, 2);
  assert.deepEqual([...new Set(two.episode)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(Array.from(two.actions.subarray(0, 56)), Array.from(s.actions.subarray(0, 56)));
});

// --- prompts ---------------------------------------------------------------------------------

function pythonBpe(dir, texts) {
  return JSON.parse(execFileSync(BPE_PYTHON, [join(here, 'helpers', 'qwen2_bpe_reference.py'), dir], { input: JSON.stringify(texts), encoding: 'utf8', maxBuffer: 1 << 26 }));
}

const PROMPT_TEXTS = [
  ...TASKS.map(vlaAdapterPromptText),
  "What's the robot's action?\n\n  It's 42 plates;\tdone.  ",
  'Café naïve résumé — ＡＢＣ 日本語 e\u0301 <|im_end|>x<|im_start|>',
];

test('prompt text: QwenPromptBuilder("openvla") with the instruction lower-cased, as the minivlm path tokenizes it', () => {
  assert.equal(vlaAdapterPromptText('Open the TOP drawer'),
    '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' +
    '<|im_start|>user\nWhat action should the robot take to open the top drawer?<|im_end|>\n<|im_start|>assistant\n <|im_end|><|endoftext|>');
});

test('prompt ids (tiny Qwen2 BPE): the library equals an independent Python BPE; ids = prompt less its last 3, then 64 placeholders', { skip: haveRegex ? false : 'no python3' }, async (t) => {
  const dir = join(tempDir(t, 'rlds-tok-'), 'model');
  const base = writeTinyQwen2(dir);
  const tok = await loadPromptTokenizer(dir);
  assert.equal(tok.baseVocabSize, base);
  const want = pythonBpe(dir, PROMPT_TEXTS);
  PROMPT_TEXTS.forEach((text, i) => assert.deepEqual(tok.encode(text), want[i], JSON.stringify(text)));
  const ids = promptInputIds(tok, TASKS[1]);
  const full = want[1];
  assert.equal(ids.length, full.length - 3 + NUM_ACTION_TOKENS);
  assert.deepEqual(Array.from(ids.subarray(0, full.length - 3)), full.slice(0, -3));
  assert.deepEqual(full.slice(-3), [pythonBpe(dir, [' '])[0][0], base + 2, base], "the three removed: ' ', <|im_end|>, <|endoftext|>");
  assert.equal(ids[0], base + 1, 'no BOS: the first id is <|im_start|>');
  assert.ok(Array.from(ids.subarray(-NUM_ACTION_TOKENS)).every((v) => v === actionPlaceholderId(tok) && v > actionTokenBeginIdx(tok)));
  // The prefix kept is the inference prompt's tokenization (openvla_utils.py:783).
  const infer = pythonBpe(dir, [vlaAdapterPromptText(TASKS[1]).replace(/ <\|im_end\|><\|endoftext\|>$/, '')])[0];
  assert.deepEqual(Array.from(ids.subarray(0, ids.length - NUM_ACTION_TOKENS)), infer);

  // A tokenizer.json (what AutoTokenizer reads first) gives the same ids as vocab.json + merges.txt.
  const dir2 = join(dirname(dir), 'model2');
  mkdirSync(dir2);
  const vocab = JSON.parse(readFileSync(join(dir, 'vocab.json'), 'utf8'));
  const merges = readFileSync(join(dir, 'merges.txt'), 'utf8').split('\n').slice(1).filter(Boolean);
  const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  writeFileSync(join(dir2, 'tokenizer.json'), JSON.stringify({
    version: '1.0', truncation: null, padding: null,
    added_tokens: Object.entries(cfg.added_tokens_decoder).map(([id, v]) => ({ id: Number(id), ...v })),
    normalizer: { type: 'NFC' },
    pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, behavior: 'Isolated', invert: false }, byteLevel] },
    post_processor: byteLevel, decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: merges.map((m) => m.split(' ')) },
  }));
  writeFileSync(join(dir2, 'tokenizer_config.json'), JSON.stringify(cfg));
  const tok2 = await loadPromptTokenizer(dir2);
  PROMPT_TEXTS.forEach((text, i) => assert.deepEqual(tok2.encode(text), want[i]));

  // Samples → input_ids: one length per file; different lengths refused unless padded.
  const s = buildRldsSamples(makeEpisodes(2, [10, 10, 10], TASKS));
  assert.throws(() => layoutInputIds(s, tok), /different lengths .* model takes no padding/);
  const padded = layoutInputIds(s, tok, { padId: base });
  assert.equal(padded.ids.length, s.size * padded.length);
  const one = buildRldsSamples(makeEpisodes(2, [10, 12], [TASKS[0]]));
  const lay = layoutInputIds(one, tok);
  assert.equal(lay.length, promptInputIds(tok, TASKS[0]).length);
  for (let n = 0; n < one.size; n++) assert.deepEqual(Array.from(lay.ids.subarray(n * lay.length, (n + 1) * lay.length)), Array.from(promptInputIds(tok, TASKS[0])));
});

// Qwen2.5's real vocabulary, where a checkout has upstream's pretrained_models/configs (vocab.json,
// merges.txt; no tokenizer.json there): the library against the Python BPE, and the well-known
// ids of Qwen2.5's default system turn.
const REAL = ['/work/up/OpenHelix-Team+VLA-Adapter/pretrained_models/configs', '/work/up/eggplantsalt+craft-adapter/pretrained_models/configs']
  .find((d) => existsSync(join(d, 'vocab.json')) && existsSync(join(d, 'merges.txt')));

test("prompt ids with Qwen2.5's own vocabulary (upstream's pretrained_models/configs)", { skip: !REAL ? 'no Qwen2.5 vocab.json + merges.txt here' : haveRegex ? false : 'no python3' }, async () => {
  const tok = await loadPromptTokenizer(REAL);
  assert.equal(tok.baseVocabSize, 151643);
  assert.equal(actionTokenBeginIdx(tok), 151386, 'constants.py:13');
  assert.equal(actionPlaceholderId(tok), 151387);
  const want = pythonBpe(REAL, PROMPT_TEXTS);
  PROMPT_TEXTS.forEach((text, i) => assert.deepEqual(tok.encode(text), want[i], JSON.stringify(text)));
  const ids = promptInputIds(tok, TASKS[2]);
  assert.deepEqual(Array.from(ids.subarray(0, 24)),
    [151644, 8948, 198, 2610, 525, 1207, 16948, 11, 3465, 553, 54364, 14817, 13, 1446, 525, 264, 10950, 17847, 13, 151645, 198, 151644, 872, 198]);
  assert.deepEqual(Array.from(ids.subarray(ids.length - 64 - 5, ids.length - 64)), [151645, 198, 151644, 77091, 198], '…<|im_end|>\\n<|im_start|>assistant\\n');
});
