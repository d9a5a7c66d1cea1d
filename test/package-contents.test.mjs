// Only the product ships (package.json "files"): `npm pack` carries dist/, bin/, the addon's
// sources and build files, the install scripts and the prebuilds, and nothing of the test
// infrastructure (test/cuda-emulator), the GPU-machine scripts, the benchmarks and their
// natives (bench/native), or the docs. And the packed tarball is enough: unpacked elsewhere,
// its install hook builds the addon from the shipped sources (CPU only, for speed), which
// loads, computes what this checkout's addon computes, and has no benchmark natives.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** `npm pack` in the repository (scripts off: dist/ is built before the tests run). */
function npmPack(args) {
  const r = spawnSync(npm, ['pack', '--json', '--ignore-scripts', ...args], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `npm pack failed: ${r.stderr}`);
  const [pack] = JSON.parse(r.stdout);
  return pack;
}

// What may ship: anything else in the tarball is a mistake in package.json "files".
const SHIPPED = [
  /^dist\//, /^bin\/craftgrad\.js$/, /^native\/(core|models|cpu|cuda|mpi|nccl|cublaslt|data|napi)\//, /^native\/sources\.cmake$/,
  /^scripts\/(install|build-native)\.js$/, /^prebuilds\//,
  /^(CMakeLists\.txt|binding\.d\.ts|LICENSE|README\.md|package\.json)$/,
];

/** The sources native/sources.cmake lists (every file a build compiles). */
function listedSources() {
  const text = readFileSync(join(root, 'native', 'sources.cmake'), 'utf8');
  return [...text.matchAll(/^\s*(native\/\S+\.(?:cc|cu))\)?\s*$/gm)].map((m) => m[1]);
}

test('npm pack carries the product and nothing else', () => {
  const files = npmPack(['--dry-run']).files.map((f) => f.path);
  const have = new Set(files);
  const required = ['dist/index.js', 'dist/native.js', 'bin/craftgrad.js', 'CMakeLists.txt', 'native/sources.cmake',
    'native/cuda/cuda.cmake', 'binding.d.ts', 'LICENSE', 'README.md', 'package.json',
    'scripts/install.js', 'scripts/build-native.js', 'native/napi/addon.cc'];
  assert.deepEqual(required.filter((f) => !have.has(f)), [], 'required files missing from the package');
  // Every source a build compiles, and the headers and bodies they include, are in it.
  const sources = listedSources();
  assert.ok(sources.length >= 30, `native/sources.cmake lists only ${sources.length} sources`);
  assert.deepEqual(sources.filter((f) => !have.has(f)), [], 'sources listed in native/sources.cmake but not packed');
  for (const layer of ['core', 'models', 'cpu', 'cuda', 'mpi', 'nccl', 'cublaslt', 'data', 'napi']) {
    const onDisk = readdirSync(join(root, 'native', layer)).map((f) => `native/${layer}/${f}`);
    assert.deepEqual(onDisk.filter((f) => !have.has(f)), [], `files of native/${layer} not packed`);
  }
  assert.deepEqual(files.filter((f) => !SHIPPED.some((re) => re.test(f))), [], 'files that should not ship');
  // The exclusions, named: each must exist in the repository (so the check means something).
  for (const excluded of ['test/cuda-emulator/runtime.cc', 'test/cuda-emulator/rewrite-launches.mjs', 'scripts/device/pack.sh',
    'scripts/cuda-resources/report.js', 'scripts/prebuild.js', 'bench/native/bench_natives.cc', 'bench/model.js',
    'docs/ARCHITECTURE.md', 'docs/report-baseline-vs-craft.png', 'src/index.ts']) {
    assert.ok(existsSync(join(root, excluded)), `${excluded} is not in the repository any more: update this test`);
    assert.ok(!have.has(excluded), `${excluded} is in the package`);
  }
  assert.deepEqual(files.filter((f) => /(^|\/)(test|bench|docs)\/|cuda-emulator|\.png$/.test(f) && !f.startsWith('dist/')), []);
});

test('the packed tarball installs elsewhere: its addon builds from the shipped sources and loads', { timeout: 20 * 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'craftgrad-pack-'));
  try {
    const pack = npmPack(['--pack-destination', dir]);
    const untar = spawnSync('tar', ['-xzf', join(dir, pack.filename), '-C', dir], { encoding: 'utf8' });
    assert.equal(untar.status, 0, untar.stderr);
    const pkg = join(dir, 'package');
    assert.ok(!existsSync(join(pkg, 'build')), 'the tarball carries a build/');
    // The dependencies npm would install (no registry here): this checkout's.
    symlinkSync(realpathSync(join(root, 'node_modules')), join(pkg, 'node_modules'), 'dir');
    const env = { ...process.env, CRAFTGRAD_CUDA: 'OFF', CRAFTGRAD_BUILD_FROM_SOURCE: '1' };
    delete env.CRAFTGRAD_PREBUILD;
    // What npm runs for the package's "install" script.
    const install = spawnSync(process.execPath, ['scripts/install.js'], { cwd: pkg, env, encoding: 'utf8' });
    assert.equal(install.status, 0, `install failed:\n${install.stdout}\n${install.stderr}`);
    assert.ok(existsSync(join(pkg, 'build', 'Release', 'craftgrad.node')), 'no build/Release/craftgrad.node after install');

    // The same surgery in the unpacked package and in this checkout: the same bits.
    const script = `const { surgery, backendInfo } = await import('./dist/index.js');
      const { binding, packageRoot } = await import('./dist/native.js');
      let s = 7; const next = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5;
      const act = [new Float32Array(300).map(next), new Float32Array(77).map(next)];
      const ret = [new Float32Array(300).map(next), new Float32Array(77).map(next)];
      const r = surgery(act, ret, { lambda: 0.1 });
      console.log(JSON.stringify({ root: packageRoot, bench: 'bench' in binding, cuda: backendInfo().cuda.compiled,
        bits: r.out.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength).toString('hex')), conflicts: [...r.conflicts] }));`;
    const run = (cwd) => {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd, env, encoding: 'utf8' });
      assert.equal(r.status, 0, `${cwd}: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop());
    };
    const packed = run(pkg);
    assert.equal(realpathSync(packed.root), realpathSync(pkg), 'the unpacked package loaded another copy of craftgrad');
    assert.equal(packed.bench, false, 'the installed addon has the benchmark natives');
    assert.equal(packed.cuda, false, 'CRAFTGRAD_CUDA=OFF built a CUDA backend');
    const here = run(root);
    assert.deepEqual(packed.bits, here.bits, 'the installed addon computes other bits than this checkout\'s');
    assert.deepEqual(packed.conflicts, here.conflicts);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
