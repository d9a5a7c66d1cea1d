// The command line as a user meets it: exit codes, one-line usage errors, suggestions.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/craftgrad.js', import.meta.url));

export function cli(args, env = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function assertUsageError(r, pattern) {
  assert.equal(r.code, 2, `exit code 2 expected, got ${r.code}\n${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  assert.equal(r.stderr.trim().split('\n').length, 2, `one error line plus the help hint:\n${r.stderr}`);
}

test('info describes the build and exits 0', () => {
  const r = cli(['info']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^craftgrad \d+\.\d+\.\d+/);
  assert.match(r.stdout, /backends compiled: cpu/);
  assert.match(r.stdout, /CPU kernels: (generic|avx2|avx512)/);
  assert.match(r.stdout, /CUDA: /);
  const json = JSON.parse(cli(['info', '--json']).stdout);
  assert.ok(Array.isArray(json.backends) && json.cpu.threads >= 1);
});

test('--help lists the commands; --version prints the version', () => {
  const help = cli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /craftgrad info/);
  assert.match(help.stdout, /craftgrad bench/);
  assert.match(cli(['--version']).stdout.trim(), /^\d+\.\d+\.\d+$/);
});

test('a misspelt command gets a suggestion and exit code 2', () => {
  assertUsageError(cli(['inf']), /unknown command 'inf' \(did you mean 'info'\?\)/);
  assertUsageError(cli(['inpsect', 'x']), /did you mean 'inspect'/);
});

test('a misspelt option gets a suggestion and exit code 2', () => {
  assertUsageError(cli(['info', '--jsn']), /unknown option '--jsn' \(did you mean '--json'\?\)/);
});

test('invalid values get one line and exit code 2', () => {
  assertUsageError(cli(['bench', '--layout', 'x']), /--layout must be one of vla, many-small, all, got "x"/);
  assertUsageError(cli(['bench', '--reps', '0']), /--reps must be a positive integer, got 0/);
});

test('build-time CRAFTGRAD_* variables are not mistaken for options', () => {
  const r = cli(['info'], { CRAFTGRAD_CUDA: 'OFF', CRAFTGRAD_BUILD_FROM_SOURCE: '1' });
  assert.equal(r.code, 0, r.stderr);
});
