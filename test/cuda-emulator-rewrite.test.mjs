// test/cuda-emulator/rewrite-launches.mjs, which turns each `kernel<<<config>>>(args)`
// of a .cu file into a ::cgemu::Launch call for the CUDA emulator build. Pure JS: runs in
// plain `npm test`, no build needed.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rewriteLaunches } from './cuda-emulator/rewrite-launches.mjs';

const script = fileURLToPath(new URL('./cuda-emulator/rewrite-launches.mjs', import.meta.url));
const rewrite = (source) => rewriteLaunches(source, 'k.cu');

test('a template callee keeps its commas in the name and in the call', () => {
  assert.equal(
    rewrite('  gemmKernel<false, true, TBM, TBN, R><<<grid, threads, 0, s>>>(m, n, k);'),
    '  ::cgemu::Launch("gemmKernel<false, true, TBM, TBN, R>", __FILE__, __LINE__, grid, threads, 0, s)' +
      '(gemmKernel<false, true, TBM, TBN, R>, m, n, k);');
});

test('a qualified callee', () => {
  assert.equal(rewrite('ns::k<<<1, 2>>>(p);'), '::cgemu::Launch("ns::k", __FILE__, __LINE__, 1, 2)(ns::k, p);');
});

test('a multi-line argument list keeps its line breaks', () => {
  assert.equal(
    rewrite('k<<<g, b>>>(a,\n    f(b, c),\n    d);\nnext();'),
    '::cgemu::Launch("k", __FILE__, __LINE__, g, b)(k, a,\n    f(b, c),\n    d);\nnext();');
});

test('a configuration with template arguments and calls is passed through whole', () => {
  assert.equal(
    rewrite('k<<<std::min<unsigned>(n, 65535u), 256, 0, st>>>(p, n);'),
    '::cgemu::Launch("k", __FILE__, __LINE__, std::min<unsigned>(n, 65535u), 256, 0, st)(k, p, n);');
});

test('a launch without arguments passes only the kernel', () => {
  assert.equal(rewrite('k<<<1, 1>>>();'), '::cgemu::Launch("k", __FILE__, __LINE__, 1, 1)(k);');
  assert.equal(rewrite('k<<<1, 1>>>(  );'), '::cgemu::Launch("k", __FILE__, __LINE__, 1, 1)(k);');
});

test('every line stays where it was, and each launch on the line of its kernel', () => {
  const source = [
    '#include <cuda_runtime.h>',
    'void run(float* p, int n, cudaStream_t s) {',
    '  first<<<n, 256, 0, s>>>(p,',
    '                         n);',
    '  if (n > 1) second<float, 4><<<dim3(n, 2),',
    '                               128>>>(p);',
    '  third<<<1, 1>>>();',
    '}',
  ].join('\n');
  const lines = rewrite(source).split('\n');
  assert.equal(lines.length, source.split('\n').length);
  assert.deepEqual(lines.map((l, i) => (l.includes('::cgemu::Launch') ? i + 1 : 0)).filter(Boolean), [3, 5, 7]);
  // Everything but the launches is unchanged.
  for (const i of [0, 1, 7]) assert.equal(lines[i], source.split('\n')[i]);
});

test('source without launches, or with << and >> of its own, is unchanged', () => {
  const source = 'int x = a << 2 >> 1;\nstd::vector<std::vector<int>> v;\n';
  assert.equal(rewrite(source), source);
});

test('launch syntax in comments and strings is left alone; brackets in a string argument do not end the call', () => {
  const src = [
    '// k<<<1, 1>>>(x) in a line comment',
    '/* and k<<<2, 2>>>( in a block comment */',
    'const char* s = "k<<<3, 3>>>(";',
    'k<<<4, 32>>>(p, "a) b", \')\');',
  ].join('\n');
  const out = rewriteLaunches(src, 'c.cu').split('\n');
  assert.deepEqual(out.slice(0, 3), src.split('\n').slice(0, 3));
  assert.equal(out[3], '::cgemu::Launch("k", __FILE__, __LINE__, 4, 32)(k, p, "a) b", \')\');');
});

test('a launch it cannot parse is an Error naming file:line', () => {
  assert.throws(() => rewrite('a;\nb;\nk<<<1, 1>>> ;'), { name: 'Error', message: /^k\.cu:3: cannot rewrite this kernel launch: no argument list/ });
  assert.throws(() => rewrite('a;\nk<<<1, 1>>>(x, (y);'), { message: /^k\.cu:2: cannot rewrite this kernel launch: unbalanced argument list/ });
  assert.throws(() => rewrite('(k)<<<1, 1>>>(x);'), { message: /^k\.cu:1: cannot rewrite this kernel launch: callee/ });
  assert.throws(() => rewrite('\n\n\n\nk<<<1, 1(x);'), { message: /^k\.cu:5: cannot rewrite this kernel launch: no >>>/ });
});

test('the command line writes a #line naming the original file, then the rewritten source', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cgemu-rewrite-'));
  try {
    const input = join(dir, 'in.cu'), output = join(dir, 'out', 'in.cc');
    const source = 'void f(float* p) {\n  k<<<1, 32>>>(p);\n}\n';
    writeFileSync(input, source);
    const r = spawnSync(process.execPath, [script, input, output], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(output, 'utf8'), `#line 1 "${input}"\n${rewriteLaunches(source, input)}`);

    writeFileSync(input, 'void f() {\n  k<<<1, 32>>>;\n}\n');
    const bad = spawnSync(process.execPath, [script, input, join(dir, 'bad.cc')], { encoding: 'utf8' });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /in\.cu:2: cannot rewrite this kernel launch/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
