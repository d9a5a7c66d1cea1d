// craftgrad train as a user runs it: the embedded default, option precedence, resume,
// signals, the baseline, inspect, and what bad input gets.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readTfEvents, backendInfo } from '../dist/index.js';
import { tempDir } from './helpers/temp-dir.mjs';
import { metricsRows } from './helpers/run-files.mjs';
import { cliPath, runCli } from './helpers/cli.mjs';

const root = tempDir(test, 'craftgrad-cli-');

const cli = (args, { cwd = root, env = {} } = {}) => runCli(args, { cwd, env });
const rows = (dir) => metricsRows(dir, { wallClock: true });
const savedConfig = (dir) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).config;
const SHORT = ['--save-every', '20', '--val-every', '20', '--quiet', '--steps', '40'];
const shortWith = (steps) => [...SHORT.slice(0, -1), String(steps)];

test('the embedded default: no arguments trains CRaFT, learns, and says where everything is', () => {
  const cwd = mkdtempSync(join(root, 'default-'));
  // How long it takes is measured by bench/default-run.js, not here (no test depends on speed).
  const r = cli([], { cwd });
  assert.equal(r.code, 0, r.stderr);
  const [name] = readdirSync(join(cwd, 'runs'));
  const dir = join(cwd, 'runs', name);
  assert.match(name, /^craft-\d{8}-\d{6}$/);
  const rs = rows(dir);
  assert.equal(rs.length, 1500);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const early = mean(rs.slice(0, 50).map((x) => x.action_loss)), late = mean(rs.slice(-50).map((x) => x.action_loss));
  assert.ok(late < 0.5 * early, `action loss falls visibly (${early} → ${late})`);
  const vals = rs.filter((x) => x.val_action_loss !== undefined).map((x) => x.val_action_loss);
  assert.ok(vals.length >= 10 && vals.at(-1) < 0.7 * vals[0], `validation loss falls (${vals[0]} → ${vals.at(-1)})`);
  const budget = rs.at(-1).retention_budget;
  const lateRet = mean(rs.slice(-200).map((x) => x.retention_loss));
  assert.ok(lateRet < 2 * budget, `retention stays near its budget (${lateRet} vs ${budget})`);
  assert.ok(Math.max(...rs.map((x) => x.lambda_after)) > 0, 'the dual variable moved');
  // The summary names every place and the follow-up commands.
  for (const p of [/action loss\s+0\.\d+ → 0\.\d+/, /validation loss/, /retention loss .* against a budget of/, /λ /, /conflict ratio\s+\d+\.\d%/,
    /samples\/s/, /run directory\s+runs\//, /checkpoints\s+runs\/.*checkpoints/, /tensorboard --logdir runs\//, /report\s+runs\/.*report\.html/, /--resume runs\//]) {
    assert.match(r.stdout, p);
  }
  for (const f of ['config.json', 'metrics.jsonl', 'metrics.csv', 'train_progress.log', 'report.html', 'conflicts.json', 'conflicts.bin', 'checkpoints/step-001500/manifest.json']) {
    assert.ok(existsSync(join(dir, f)), f);
  }
  const events = readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.'));
  assert.equal(events.length, 1);
  const scalars = readTfEvents(join(dir, events[0])).filter((e) => e.scalars);
  assert.equal(scalars.length, 1500);
  assert.ok('conflict_ratio' in scalars[0].scalars && 'lambda_after' in scalars[0].scalars);
  assert.doesNotMatch(readFileSync(join(dir, 'train_progress.log'), 'utf8'), /\r/);
});

test('precedence: command line over CRAFTGRAD_* over --config over defaults', () => {
  const cfg = join(root, 'opts.yaml');
  writeFileSync(cfg, 'steps: 30\nbatch_size: 8\nlr: 0.002\nsave-every: 10\nquiet: true\n');
  const run = (name, args, env) => {
    const r = cli(['train', '--config', cfg, '--name', name, ...args], { env });
    assert.equal(r.code, 0, r.stderr);
    return savedConfig(join(root, 'runs', name));
  };
  const fromFile = run('p-file', [], {});
  assert.deepEqual([fromFile.steps, fromFile.batch_size, fromFile.lr, fromFile.warmup], [30, 8, 0.002, 50]);
  assert.equal(run('p-env', [], { CRAFTGRAD_STEPS: '25' }).steps, 25);
  assert.equal(run('p-flag', ['--steps', '15'], { CRAFTGRAD_STEPS: '25' }).steps, 15);
  const json = join(root, 'opts.json');
  writeFileSync(json, JSON.stringify({ steps: 12, 'batch-size': 4, quiet: true }));
  assert.equal(cli(['train', '--config', json, '--name', 'p-json']).code, 0);
  assert.equal(savedConfig(join(root, 'runs', 'p-json')).batch_size, 4);
});

test('resume: a run continued with more steps equals one run straight through', () => {
  assert.equal(cli(['train', '--name', 'straight', ...shortWith(60)]).code, 0);
  assert.equal(cli(['train', '--name', 'parts', ...SHORT]).code, 0);
  const r = cli(['train', '--resume', join('runs', 'parts'), '--steps', '60', '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /resumed after step 40/);
  assert.deepEqual(metricsRows(join(root, 'runs', 'parts')), metricsRows(join(root, 'runs', 'straight')));
  const final = (n) => readFileSync(join(root, 'runs', n, 'checkpoints', 'step-000060', 'model.safetensors'));
  assert.ok(final('parts').equals(final('straight')), 'same final weights');
});

test('resume refuses a changed configuration and names the keys', () => {
  assert.equal(cli(['train', '--name', 'fixed', ...SHORT]).code, 0);
  const r = cli(['train', '--resume', join('runs', 'fixed'), '--lr', '0.5', '--batch-size', '4']);
  assert.equal(r.code, 2);
  // Named as the user types them, never as config keys.
  assert.match(r.stderr, /--batch-size \(saved/);
  assert.match(r.stderr, /--lr \(saved/);
  assert.doesNotMatch(r.stderr, /batch_size/);
});

test('SIGTERM: finish the step, save, print the resume command, exit 143; the resume completes the run', async () => {
  const child = spawn(process.execPath, [cliPath, 'train', '--name', 'sig', '--steps', '3000', '--save-every', '1000', '--quiet'], { cwd: root });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  await new Promise((resolve) => setTimeout(resolve, 4000));
  child.kill('SIGTERM');
  const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 143, out);
  assert.match(out, /Resume with: npx craftgrad train --resume runs\/sig/);
  const step = Number(/after step (\d+)/.exec(out)[1]);
  assert.ok(existsSync(join(root, 'runs', 'sig', 'checkpoints', `step-${String(step).padStart(6, '0')}`, 'manifest.json')));
  const r = cli(['train', '--resume', join('runs', 'sig'), '--steps', String(step + 5), '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(rows(join(root, 'runs', 'sig')).at(-1).step, step + 5);
});

test('the baseline has no CRaFT keys and no conflict log', () => {
  const r = cli(['train', '--no-craft', '--name', 'base', ...SHORT]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /baseline run/);
  const rs = rows(join(root, 'runs', 'base'));
  assert.ok(rs.every((x) => !('lambda_after' in x) && !('conflict_ratio' in x) && 'action_loss' in x));
  assert.ok(!existsSync(join(root, 'runs', 'base', 'conflicts.json')));
});

test('inspect: a run directory and a checkpoint; a damaged checkpoint exits 1', () => {
  assert.equal(cli(['train', '--name', 'ins', ...SHORT]).code, 0);
  const run = cli(['inspect', join('runs', 'ins')]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /step-000040/);
  const ck = join('runs', 'ins', 'checkpoints', 'step-000040');
  const c = cli(['inspect', ck]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /blocks\.0\.lora_A/);
  assert.match(c.stdout, /λ|lambda/);
  const json = JSON.parse(cli(['inspect', ck, '--json']).stdout);
  assert.equal(json.kind, 'checkpoint');
  writeFileSync(join(root, ck, 'model.safetensors'), 'garbage');
  const bad = cli(['inspect', ck]);
  assert.equal(bad.code, 1);
  assert.match(bad.stdout + bad.stderr, /invalid|mismatch|sha256/i);
  assert.equal(cli(['inspect', 'runs/nothing-here']).code, 2);
});

test('a closed output pipe ends the command quietly', () => {
  const r = spawnSync('sh', ['-c', `"${process.execPath}" "${cliPath}" --help | head -1`], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.doesNotMatch(r.stderr, /EPIPE|Error/);
});

test('bad options and values: one line, exit code 2, no run directory left behind', () => {
  const cwd = mkdtempSync(join(root, 'bad-'));
  for (const [args, pattern] of [
    [['train', '--steps', '0'], /--steps must be an integer >= 1, got 0/],
    [['train', '--steps', 'abc'], /--steps must be a number/],
    [['train', '--val-every', '0', '--val-every', '20'], /--val-every is given 2 times \(0, 20\): give it once/],
    [['train', '--lr', '-1'], /--lr must be > 0, got -1/],
    [['train', '--schedule', 'linear'], /--schedule must be one of constant, multistep, cosine/],
    [['train', '--stepz', '5'], /unknown option '--stepz' \(did you mean '--steps'\?\)/],
    [['trian'], /unknown command 'trian' \(did you mean 'train'\?\)/],
    ...(backendInfo().cuda.available ? [] : [[['train', '--device', 'cuda'], /--device: CUDA was requested but/]]),
    [['train', '--device', 'gpu'], /--device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'/],
    [['train', '--config', 'nope.yaml'], /--config .*nope\.yaml: no such file/],
    [['train', '--resume', 'nowhere'], /--resume nowhere: not a run directory/],
    [['train', '--data', 'missing.npz'], /--data missing\.npz: no such file/],
    [['train', '--name', '../escape'], /--name must be a plain name/],
  ]) {
    const r = cli(args, { cwd });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  assert.ok(!existsSync(join(cwd, 'runs')) || readdirSync(join(cwd, 'runs')).length === 0);
});
