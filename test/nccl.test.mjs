// binding.nccl at the N-API boundary, in plain `npm test`: how NCCL is found and what is said
// when it is not (each case in a child process: the loader looks once per process), and the
// argument checks of the communicator. The collectives themselves run on the CUDA
// emulator's build with its NCCL stand-in (test/nccl-cuda.test.mjs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { binding } from '../dist/native.js';
import { backendInfo } from '../dist/backend.js';
import { deviceReduceMode } from '../dist/parallel/device-group.js';
import { cudaIndexForThisRank } from '../dist/device.js';
import { tempDir } from './helpers/temp-dir.mjs';

const dir = tempDir(test, 'craftgrad-nccl-');
const cudaCompiled = backendInfo().cuda.compiled;

/** backendInfo().nccl and the error of nccl.uniqueId() in a fresh process with `env`. */
function probe(env) {
  const code = `import('${new URL('../dist/native.js', import.meta.url).href}').then(({ binding }) => {
    let err; try { binding.nccl.uniqueId(); } catch (e) { err = { code: e.code, message: e.message }; }
    console.log(JSON.stringify({ info: binding.backendInfo().nccl, err }));
  });`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('without NCCL, backendInfo says why and uniqueId throws ERR_CRAFTGRAD_NCCL naming what was tried', (t) => {
  const missing = join(dir, 'no-such-libnccl.so.2');
  const { info, err } = probe({ CRAFTGRAD_NCCL_LIBRARY: missing });
  assert.equal(info.available, false);
  assert.match(info.reason, cudaCompiled ? /NCCL could not be loaded .*no-such-libnccl\.so\.2.*CRAFTGRAD_NCCL_LIBRARY names that file/ : /no CUDA backend/);
  assert.equal(err.code, 'ERR_CRAFTGRAD_NCCL');
  assert.match(err.message, /no-such-libnccl\.so\.2/);
  t.diagnostic(`this machine's NCCL: ${JSON.stringify(backendInfo().nccl)}`);
});

test('a library that is not NCCL is refused by name, with the symbol it lacks', () => {
  const libm = spawnSync('gcc', ['-print-file-name=libm.so.6'], { encoding: 'utf8' }).stdout?.trim();
  const lib = libm && libm.startsWith('/') ? libm : '/lib/x86_64-linux-gnu/libm.so.6';
  const { err } = probe({ CRAFTGRAD_NCCL_LIBRARY: lib });
  assert.equal(err.code, 'ERR_CRAFTGRAD_NCCL');
  assert.match(err.message, /is not a usable NCCL: it has no ncclGetVersion/);
});

test('a file that is not a shared library is refused with the loader\'s words', () => {
  const bogus = join(dir, 'libnccl.so.2');
  writeFileSync(bogus, 'not an ELF file');
  const { err } = probe({ CRAFTGRAD_NCCL_LIBRARY: bogus });
  assert.equal(err.code, 'ERR_CRAFTGRAD_NCCL');
  assert.match(err.message, /NCCL could not be loaded \(.*libnccl\.so\.2.*(invalid ELF header|file too short)/);
});

test('nccl.Communicator checks its options before NCCL is touched', () => {
  const C = binding.nccl.Communicator;
  const id = new Uint8Array(128);
  assert.throws(() => C({ id, rank: 0, size: 1, device: 'cpu' }), { name: 'TypeError', message: /without 'new'/ });
  assert.throws(() => new C(), { name: 'TypeError', message: /options must be an object/ });
  assert.throws(() => new C({ id: new Uint8Array(12), rank: 0, size: 1, device: 'cpu' }), { name: 'TypeError', message: /options\.id must be a Uint8Array of 128 bytes/ });
  assert.throws(() => new C({ id: new Float32Array(32), rank: 0, size: 1, device: 'cpu' }), { name: 'TypeError', message: /options\.id/ });
  assert.throws(() => new C({ id, rank: 2, size: 2, device: 'cpu' }), { name: 'RangeError', message: /options\.rank must be an integer from 0 to 1/ });
  assert.throws(() => new C({ id, rank: 0, size: 0, device: 'cpu' }), { name: 'RangeError', message: /options\.size/ });
  assert.throws(() => new C({ id, rank: 0.5, size: 2, device: 'cpu' }), { name: 'RangeError', message: /options\.rank/ });
  assert.throws(() => new C({ id, rank: 0, size: 1, device: 'tpu' }), { name: 'RangeError', message: /options\.device/ });
  // Its methods on another object: a TypeError, never a crash.
  for (const k of ['reduceScatterInRankOrder', 'allgatherSegments', 'abort']) {
    assert.throws(() => C.prototype[k].call({}, []), { name: 'TypeError' }, k);
  }
  assert.throws(() => Object.getOwnPropertyDescriptor(C.prototype, 'rank').get.call({}), Error);
  // The CPU backend has no device communicator: its sets go through MPI.
  assert.throws(() => new C({ id, rank: 0, size: 1, device: 'cpu' }), { code: 'ERR_CRAFTGRAD_NCCL', message: /cpu backend has no device communicator/ });
});

test('CRAFTGRAD_DEVICE_REDUCE is auto, nccl or host; anything else is refused by name', () => {
  assert.equal(deviceReduceMode(undefined), 'auto');
  assert.equal(deviceReduceMode(''), 'auto');
  assert.equal(deviceReduceMode('nccl'), 'nccl');
  assert.equal(deviceReduceMode('host'), 'host');
  assert.throws(() => deviceReduceMode('NCCL'), { name: 'RangeError', message: /CRAFTGRAD_DEVICE_REDUCE must be 'auto', 'nccl' or 'host', got "NCCL"/ });
});

test("'cuda' is the local rank's GPU under a launcher, cuda:0 otherwise", () => {
  const count = backendInfo().cuda.devices.length;
  assert.equal(cudaIndexForThisRank({}), 0);
  assert.equal(cudaIndexForThisRank({ OMPI_COMM_WORLD_LOCAL_RANK: '' }), 0);
  assert.equal(cudaIndexForThisRank({ OMPI_COMM_WORLD_LOCAL_RANK: 'x', SLURM_LOCALID: '0' }), 0);
  for (const v of ['OMPI_COMM_WORLD_LOCAL_RANK', 'MPI_LOCALRANKID', 'PMIX_LOCAL_RANK', 'SLURM_LOCALID']) {
    assert.equal(cudaIndexForThisRank({ [v]: '5' }), count > 0 ? 5 % count : 0, v);
  }
});
