// Nothing a run had is lost off the happy path (ARCHITECTURE.md §6): a resume either completes or
// changes nothing (every file of the run hashed before and after), a run killed before
// its first checkpoint or left by a double SIGINT resumes and repeats the lost rows
// exactly, and impossible options or outputs are refused before training, in one line.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { decodeSafetensors, encodeSafetensors } from '../dist/formats/index.js';
import { tempDir } from './helpers/temp-dir.mjs';
import { metricsCsv, metricsRows } from './helpers/run-files.mjs';
import { cliPath, runCli } from './helpers/cli.mjs';

const root = tempDir(test, 'craftgrad-lost-');

const cli = (args, cwd = root) => runCli(args, { cwd });

// One run configuration for every test: save_every is the only difference, and it does
// not change the numbers, so every run here must log the reference's rows.
const STEPS = 24;
const RUN = ['--steps', String(STEPS), '--val-every', '8', '--quiet'];

let reference;
function ref() {
  if (!reference) {
    const r = cli(['train', '--name', 'reference', '--save-every', '0', ...RUN]);
    assert.equal(r.code, 0, r.stderr);
    reference = join(root, 'runs', 'reference');
  }
  return reference;
}

/** The run's rows, CSV and conflict log equal the uninterrupted reference's. */
function assertSameAsReference(dir) {
  assert.deepEqual(metricsRows(dir), metricsRows(ref()), 'metrics.jsonl rows (wall-clock fields aside)');
  assert.deepEqual(metricsCsv(dir), metricsCsv(ref()), 'metrics.csv header and rows');
  assert.ok(readFileSync(join(dir, 'conflicts.bin')).equals(readFileSync(join(ref(), 'conflicts.bin'))), 'conflicts.bin');
}

/** sha256 of every file under `dir`, by relative path: the run byte for byte. */
function snapshot(dir) {
  const out = {};
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out[relative(dir, p) + '/'] = 'dir';
        walk(p);
      } else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/** A copy of the finished reference run under a new name, for a test to damage. */
function copyOfReference(name) {
  const dir = join(root, 'runs', name);
  cpSync(ref(), dir, { recursive: true });
  return dir;
}

function noStack(r) {
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

test('a run killed before its first checkpoint resumes from step 0 and writes the lost rows again, the same', () => {
  const dir = copyOfReference('killed');
  // What kill -9 during the first checkpoint leaves: every row logged, a half-written
  // checkpoint, a torn last metrics line and conflict record, a lock of a dead process.
  rmSync(join(dir, 'checkpoints'), { recursive: true });
  mkdirSync(join(dir, 'checkpoints', '.tmp-step-000024-1-2'), { recursive: true });
  writeFileSync(join(dir, 'checkpoints', '.tmp-step-000024-1-2', 'model.safetensors'), 'partial');
  appendFileSync(join(dir, 'metrics.jsonl'), '{"step":25,"epo');
  appendFileSync(join(dir, 'metrics.csv'), '25,0.1');
  appendFileSync(join(dir, 'conflicts.bin'), Buffer.from([1, 2, 3]));
  const dead = spawnSync(process.execPath, ['-e', '']).pid;
  writeFileSync(join(dir, 'run.lock'), `${dead}\n`);

  const r = cli(['train', '--resume', dir, ...RUN]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: no valid checkpoint in .*starting again from step 0/, 'said on stderr even with --quiet');
  assertSameAsReference(dir);
  assert.deepEqual(readdirSync(join(dir, 'checkpoints')), ['step-000024']);
  assert.ok(!existsSync(join(dir, 'run.lock')));
  // And every later resume works too (nothing left to run).
  assert.equal(cli(['train', '--resume', dir, ...RUN]).code, 0);
});

test('a real kill -9 before the first checkpoint: the resume completes the run exactly', async () => {
  const dir = join(root, 'runs', 'sigkill');
  const child = spawn(process.execPath, [cliPath, 'train', '--name', 'sigkill', '--save-every', '0', ...RUN], { cwd: root, stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // Killed as soon as rows are on disk (no checkpoint is due before the last step).
  for (let i = 0; i < 6000 && child.exitCode === null; i++) {
    if (existsSync(join(dir, 'metrics.jsonl')) && readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').length > 3) break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  child.kill('SIGKILL');
  const end = await exited;
  if (end.signal === 'SIGKILL') assert.equal(readdirSync(join(dir, 'checkpoints')).filter((n) => n.startsWith('step-')).length, 0);
  else console.log(`# the run ended before the kill (${JSON.stringify(end)}): the resume below has nothing to repeat`);
  const r = cli(['train', '--resume', dir, ...RUN]);
  assert.equal(r.code, 0, r.stderr);
  assertSameAsReference(dir);
});

test('every checkpoint corrupt: the resume warns under --quiet, sets them aside and repeats the run exactly', () => {
  const dir = join(root, 'runs', 'corrupt');
  assert.equal(cli(['train', '--name', 'corrupt', '--save-every', '10', ...RUN]).code, 0);
  const ck = join(dir, 'checkpoints');
  const before = readdirSync(ck).sort();
  assert.deepEqual(before, ['step-000010', 'step-000020', 'step-000024']);
  for (const n of before) {
    const f = join(ck, n, 'model.safetensors');
    const b = readFileSync(f);
    b[b.length - 1] ^= 0xff;
    writeFileSync(f, b);
  }
  const r = cli(['train', '--resume', dir, ...RUN]);
  assert.equal(r.code, 0, r.stderr);
  for (const n of before) assert.match(r.stderr, new RegExp(`warning: checkpoint .*${n} is not valid and was moved to`));
  assert.match(r.stderr, /starting again from step 0/);
  assertSameAsReference(dir);
  const after = readdirSync(ck);
  assert.equal(after.filter((n) => n.startsWith('.invalid-')).length, 3, 'set aside, not deleted');
});

test('a resume that fails changes nothing on disk: refused options, an unloadable checkpoint, a damaged metrics file', () => {
  const dir = join(root, 'runs', 'unchanged');
  assert.equal(cli(['train', '--name', 'unchanged', '--save-every', '10', ...RUN]).code, 0);
  // Rows after the newest checkpoint (21..24) are what a careless resume would cut.
  rmSync(join(dir, 'checkpoints', 'step-000024'), { recursive: true });
  const ck = readdirSync(join(dir, 'checkpoints')).filter((n) => n.startsWith('step-')).sort().at(-1);
  assert.equal(ck, 'step-000020');
  const pristine = join(root, 'pristine-step-000020');
  cpSync(join(dir, 'checkpoints', ck), pristine, { recursive: true });
  const h0 = snapshot(dir);

  const refused = cli(['train', '--resume', dir, '--lr', '0.5', '--quiet']);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /--lr \(saved 0\.001, requested 0\.5\)/);
  assert.doesNotMatch(refused.stderr, /[a-z]+_[a-z]+/, 'flags, not config keys');
  noStack(refused);
  assert.deepEqual(snapshot(dir), h0, 'refused: unchanged');

  // A checkpoint whose files match its manifest but whose optimizer state lacks a tensor:
  // found valid, then fails to load into the trainer.
  const ckDir = join(dir, 'checkpoints', ck);
  const opt = decodeSafetensors(readFileSync(join(ckDir, 'optimizer.safetensors')));
  const names = Object.keys(opt.tensors);
  const kept = Object.fromEntries(names.slice(1).map((k) => [k, opt.tensors[k]]));
  const bytes = encodeSafetensors(kept, opt.metadata ?? {});
  writeFileSync(join(ckDir, 'optimizer.safetensors'), bytes);
  const manifest = JSON.parse(readFileSync(join(ckDir, 'manifest.json'), 'utf8'));
  manifest.files['optimizer.safetensors'] = { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
  writeFileSync(join(ckDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  const h1 = snapshot(dir);
  const unloadable = cli(['train', '--resume', dir, ...RUN]);
  assert.equal(unloadable.code, 1, unloadable.stderr);
  assert.match(unloadable.stderr, /step-000020: cannot resume from this checkpoint: /);
  noStack(unloadable);
  assert.deepEqual(snapshot(dir), h1, 'unloadable checkpoint: unchanged');
  rmSync(ckDir, { recursive: true });
  cpSync(pristine, ckDir, { recursive: true });

  // metrics.csv damaged in the middle: refused before metrics.jsonl is cut back.
  const csv = readFileSync(join(dir, 'metrics.csv'), 'utf8').split('\n');
  csv[3] = 'garbage';
  writeFileSync(join(dir, 'metrics.csv'), csv.join('\n'));
  const h2 = snapshot(dir);
  const damaged = cli(['train', '--resume', dir, ...RUN]);
  assert.equal(damaged.code, 1, damaged.stderr);
  assert.match(damaged.stderr, /metrics\.csv \(line 4\): .*not a valid row/);
  assert.deepEqual(snapshot(dir), h2, 'damaged metrics.csv: unchanged');
});

test('a double SIGINT leaves a run that the next resume completes exactly', async () => {
  for (const [i, wait] of [[0, 2], [1, 6], [2, 12]].entries()) {
    const name = `sigint-${i}`;
    const dir = join(root, 'runs', name);
    // A checkpoint every step: the second signal most likely lands in the middle of one.
    const child = spawn(process.execPath, [cliPath, 'train', '--name', name, '--save-every', '1', ...RUN], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => { err += d; });
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    for (let k = 0; k < 6000 && child.exitCode === null; k++) {
      if (existsSync(join(dir, 'metrics.jsonl')) && readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').length > wait) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    child.kill('SIGINT');
    child.kill('SIGINT');
    const end = await exited;
    assert.doesNotMatch(err, /\n\s+at /, `first run: no stack trace (${err})`);
    const r = cli(['train', '--resume', dir, ...RUN]);
    assert.equal(r.code, 0, `${JSON.stringify(end)}: ${r.stderr}`);
    noStack(r);
    assertSameAsReference(dir);
  }
});

test('--val-fraction 0 turns validation off; asking for validation with it is refused before training', () => {
  const cwd = mkdtempSync(join(root, 'vf0-'));
  const r = cli(['train', '--name', 'v', '--val-fraction', '0', '--steps', '3', '--quiet'], cwd);
  assert.equal(r.code, 0, r.stderr);
  const saved = JSON.parse(readFileSync(join(cwd, 'runs', 'v', 'config.json'), 'utf8')).config;
  assert.equal(saved.val_every, 0, 'config.json records that validation is off');
  assert.ok(existsSync(join(cwd, 'runs', 'v', 'checkpoints', 'step-000003')));
  const bad = cli(['train', '--name', 'w', '--val-fraction', '0', '--val-every', '100', '--steps', '3', '--quiet'], cwd);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^craftgrad: --val-every 100 needs a validation split, but --val-fraction 0 holds none out/);
  noStack(bad);
  assert.ok(!existsSync(join(cwd, 'runs', 'w')), 'nothing written');
});

test('an output directory that cannot be created: one line, exit 1, no hang', (t) => {
  const cwd = mkdtempSync(join(root, 'out-'));
  writeFileSync(join(cwd, 'a-file'), 'x');
  const cases = [join(cwd, 'a-file', 'runs')];
  if (existsSync('/proc/self')) cases.push('/proc/craftgrad-test');
  else t.diagnostic('no /proc here: the /proc case (Node\'s recursive mkdir looping there) is not exercised');
  for (const out of cases) {
    const r = spawnSync(process.execPath, [cliPath, 'train', '--out', out, '--steps', '2', '--quiet'], { cwd, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
    assert.equal(r.signal, null, `${out}: ended by itself`);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^craftgrad: --out ${out.replace(/[/.-]/g, '\\$&')}: cannot create or write the output directory: \\S+`));
    assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
});

test('inspect of a file or a non-run directory and report of a non-run directory: one line, exit 2', () => {
  const cwd = mkdtempSync(join(root, 'notrun-'));
  writeFileSync(join(cwd, 'file.txt'), 'x');
  mkdirSync(join(cwd, 'empty'));
  for (const args of [['inspect', 'file.txt'], ['inspect', 'empty'], ['report', 'empty']]) {
    const r = cli(args, cwd);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: one line: ${r.stderr}`);
    noStack(r);
  }
  assert.ok(!existsSync(join(cwd, 'empty', 'report.html')), 'no empty report');
});

test('a batch size larger than the training set: a warning, and config.json records the size used', () => {
  const cwd = mkdtempSync(join(root, 'batch-'));
  const r = cli(['train', '--name', 'b', '--batch-size', '100000', '--steps', '2', '--quiet'], cwd);
  assert.equal(r.code, 0, r.stderr);
  const m = /warning: --batch-size 100000 is larger than the training set \((\d+) samples\): using \1/.exec(r.stderr);
  assert.ok(m, r.stderr);
  assert.equal(JSON.parse(readFileSync(join(cwd, 'runs', 'b', 'config.json'), 'utf8')).config.batch_size, Number(m[1]));
  assert.ok(Number(m[1]) < 100000);
});

test('a cosine run suggests only what a resume accepts, and the refusal names --steps', () => {
  const cwd = mkdtempSync(join(root, 'cosine-'));
  const short = cli(['train', '--name', 'c', '--schedule', 'cosine', '--steps', '4', '--quiet'], cwd);
  assert.equal(short.code, 2);
  assert.match(short.stderr, /^craftgrad: --steps 4 must exceed --warmup 50 under --schedule cosine/);
  const r = cli(['train', '--name', 'c', '--schedule', 'cosine', '--warmup', '1', '--steps', '4', '--quiet'], cwd);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /--resume \S+ --steps/);
  assert.match(r.stdout, /train further .*start a new run with --steps 8/);
  const h = snapshot(join(cwd, 'runs', 'c'));
  const more = cli(['train', '--resume', join('runs', 'c'), '--steps', '8', '--quiet'], cwd);
  assert.equal(more.code, 2);
  assert.match(more.stderr, /--steps \(saved 4, requested 8\)/);
  assert.match(more.stderr, /cosine schedule/);
  assert.doesNotMatch(more.stderr, /[a-z]+_[a-z]+/, 'flags, not config keys');
  assert.doesNotMatch(more.stderr, /Run craftgrad --help/);
  assert.deepEqual(snapshot(join(cwd, 'runs', 'c')), h);
  // The non-cosine suggestion is accepted as printed.
  const plain = cli(['train', '--name', 'p', '--steps', '3', '--quiet'], cwd);
  const suggestion = /train further\s+npx craftgrad train (--resume \S+ --steps \d+)/.exec(plain.stdout);
  assert.ok(suggestion, plain.stdout);
  const follow = cli(['train', ...suggestion[1].split(' '), '--quiet'], cwd);
  assert.equal(follow.code, 0, follow.stderr);
});

test('a dataset format error is one line without the --help line (that is for usage errors)', () => {
  const cwd = mkdtempSync(join(root, 'data-'));
  writeFileSync(join(cwd, 'bad.npz'), 'this is not a zip archive');
  const r = cli(['train', '--data', 'bad.npz', '--steps', '2', '--quiet'], cwd);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /bad\.npz/);
  assert.doesNotMatch(r.stderr, /Run craftgrad --help/);
  noStack(r);
  // A real usage error still gets it.
  assert.match(cli(['train', '--stepz', '2']).stderr, /Run craftgrad --help for usage\./);
});
