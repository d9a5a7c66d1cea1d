// The command line as a user meets it: exit codes, one-line usage errors, suggestions.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NATIVE_ENV_VARIABLES, optionNameOf } from '../dist/cli/native-env.js';
import { runCli } from './helpers/cli.mjs';


const cli = (args, env = {}) => runCli(args, { env, timeout: 120_000 });

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

test('--threads is one global option: every command takes it, bad values are usage errors', () => {
  const json = JSON.parse(cli(['info', '--json', '--threads', '3']).stdout);
  assert.equal(json.cpu.threads, 3);
  assertUsageError(cli(['info', '--threads', '0']), /--threads must be an integer from 1 to 1024, got 0/);
  assertUsageError(cli(['train', '--threads', '1.5', '--steps', '1']), /--threads must be an integer from 1 to 1024, got 1.5/);
  assert.match(cli(['train', '--help']).stdout, /--threads/);
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
  // The first word names a command, never an option: 'dat' is not '--data' (a train option).
  for (const [typed, meant] of [['dat', 'data'], ['trian', 'train'], ['exprot', 'export'], ['reprot', 'report'], ['bnech', 'bench']]) {
    const r = cli([typed]);
    assertUsageError(r, new RegExp(`unknown command '${typed}' \\(did you mean '${meant}'\\?\\)`));
    assert.doesNotMatch(r.stderr, /'--/, `${typed}: an option was suggested`);
  }
  // Far from every command: the commands are listed, not an option that happens to match.
  const far = cli(['steps']);
  assertUsageError(far, /unknown command 'steps' \(the commands are train, inspect, export, report, data, info, bench\)/);
  // A bare word after the command may be a forgotten '--'.
  assertUsageError(cli(['train', 'steps']), /unknown argument 'steps' \(did you mean '--steps'\?\)/);
});

test('every command --help lists is suggested for a one-letter slip', () => {
  const listed = [...cli(['--help']).stdout.matchAll(/^\s+craftgrad (\w+)/gm)].map((m) => m[1]);
  assert.ok(listed.length >= 7, listed.join(', '));
  for (const name of listed) {
    const slip = name.slice(0, -1); // 'expor' for 'export'
    assertUsageError(cli([slip]), new RegExp(`did you mean '${name}'`));
  }
});

test('a misspelt option gets a suggestion and exit code 2', () => {
  assertUsageError(cli(['info', '--jsn']), /unknown option '--jsn' \(did you mean '--json'\?\)/);
  // Named once as typed: yargs also lists the camel-cased 'dataDir', and a one-dash flag without its dash.
  const twice = cli(['info', '--data-dir', 'x']);
  assertUsageError(twice, /unknown option '--data-dir'/);
  assert.doesNotMatch(twice.stderr, /dataDir/);
  assertUsageError(cli(['info', '-q']), /unknown option '-q'$/m);
});

test('a command without its required argument says which, in one line', () => {
  assertUsageError(cli(['data']), /^craftgrad: 'data' needs at least 1 argument, got 0$/m);
  assertUsageError(cli(['export']), /'export' needs at least 1 argument, got 0/);
});

test('invalid values get one line and exit code 2', () => {
  assertUsageError(cli(['bench', '--layout', 'x']), /--layout must be one of vla, many-small, all, got "x"/);
  assertUsageError(cli(['bench', '--reps', '0']), /--reps must be a positive integer, got 0/);
});

test('the CRAFTGRAD_* variables of the addon, its loader and its build are not mistaken for options', () => {
  const env = {
    CRAFTGRAD_CUDA: 'OFF', CRAFTGRAD_BUILD_FROM_SOURCE: '1', CRAFTGRAD_DEBUG: '0', CRAFTGRAD_THREADS: '2',
    CRAFTGRAD_CPU_ISA: 'generic', CRAFTGRAD_CUDA_GEMM: 'tiled64', CRAFTGRAD_CUDA_GROUP_BYTES: '1048576', CRAFTGRAD_MPI: 'AUTO',
    CRAFTGRAD_DATA_PARALLEL: 'plain', CRAFTGRAD_DEVICE_REDUCE: 'host', CRAFTGRAD_NCCL_LIBRARY: '/nowhere/libnccl.so.2',
    CRAFTGRAD_NCCL_TIMEOUT_S: '30', CRAFTGRAD_NCCL_ROUND_FLOATS: '1000', CRAFTGRAD_BUILD_DRY_RUN: '0', CRAFTGRAD_CUDA_FP32_GEMM: 'cublaslt',
    CRAFTGRAD_CUBLASLT_LIBRARY: '/nowhere/libcublasLt.so.13',
  };
  assert.deepEqual(Object.keys(env).sort(), NATIVE_ENV_VARIABLES.filter((v) => v !== 'CRAFTGRAD_PREBUILD').sort());
  const r = cli(['info'], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /CPU kernels: generic/);
});

test('NATIVE_ENV_VARIABLES lists every CRAFTGRAD_* variable the sources read', () => {
  // getenv("CRAFTGRAD_X") and positiveFromEnv("CRAFTGRAD_X", ...) in native code,
  // process.env.CRAFTGRAD_X (or env.CRAFTGRAD_X, an environment passed in) in scripts and src, and
  // node-gyp-build's <PACKAGE>_PREBUILD. A variable missing from the list breaks the CLI.
  const found = new Set(['CRAFTGRAD_PREBUILD']);
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cc|cu|cuh|h|ts|js|mjs)$/.test(e.name)) {
        const text = readFileSync(p, 'utf8');
        for (const m of text.matchAll(/(?:getenv\("|FromEnv\("|\benv\.)(CRAFTGRAD_[A-Z0-9_]+)/g)) found.add(m[1]);
      }
    }
  };
  for (const dir of ['native', 'src', 'scripts']) walk(fileURLToPath(new URL(`../${dir}`, import.meta.url)));
  assert.ok(found.has('CRAFTGRAD_CUDA_GEMM') && found.has('CRAFTGRAD_THREADS'), [...found].join(', '));
  assert.deepEqual([...found].sort(), [...NATIVE_ENV_VARIABLES].sort());
  assert.equal(optionNameOf('CRAFTGRAD_CUDA_GROUP_BYTES'), 'cuda-group-bytes');
});
