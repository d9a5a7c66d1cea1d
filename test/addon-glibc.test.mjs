// The CUDA addon that travels to the GPU machine (scripts/device/pack.sh builds it with
// scripts/device/glibc-2.31.cmake) must load on glibc 2.31 and later: objdump -T may show no
// glibc symbol version above 2.31 and no undefined symbol without a version except node's
// own (napi_*), and, when the glibc 2.31 sysroot is here (scripts/device/glibc-sysroot.sh),
// the addon is loaded with RTLD_NOW by glibc 2.31's own dynamic loader. A CUDA build made
// without that toolchain links against this machine's glibc and is skipped with the reason,
// unless CGTEST_REQUIRE_GLIBC_231=1 (pack.sh sets it) makes every CUDA build answer.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { backendInfo } from '../dist/index.js';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const addon = require('node-gyp-build').path(root);
const settingsFile = join(dirname(dirname(addon)), 'craftgrad-settings.json');
const settings = existsSync(settingsFile) ? readFileSync(settingsFile, 'utf8') : '';
const sysroot = join(homedir(), '.cache', 'craftgrad', 'glibc-2.31');
const loader = join(sysroot, 'lib', 'x86_64-linux-gnu', 'ld-2.31.so');

const versionOf = (v) => v.split('.').map(Number);
const newer = (a, b) => { // a > b, both 'x.y[.z]'
  const [x, y] = [versionOf(a), versionOf(b)];
  for (let i = 0; i < Math.max(x.length, y.length); ++i) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return false;
};

function skipReason() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `glibc targets are checked on x86-64 Linux only (this is ${process.platform}-${process.arch})`;
  if (!backendInfo().cuda.compiled) return 'this build has no CUDA backend (only the CUDA build travels to the GPU machine)';
  if (spawnSync('objdump', ['--version']).status !== 0) return 'objdump (binutils) is not installed';
  if (process.env.CGTEST_REQUIRE_GLIBC_231 !== '1' && !settings.includes('glibc-2.31.cmake')) {
    return `${addon} was built without scripts/device/glibc-2.31.cmake (it needs this machine's glibc; pack.sh makes the portable build)`;
  }
  return false;
}
const skip = skipReason();
if (skip) console.log(`# addon-glibc: skipped: ${skip}`);

test('the CUDA addon asks for no glibc symbol newer than 2.31 and none without a version', { skip }, () => {
  const dump = spawnSync('objdump', ['-T', addon], { encoding: 'utf8' });
  assert.equal(dump.status, 0, dump.stderr);
  // '<address> <7 flag columns> *UND*  <size> [(VERSION)|Base] <name>'
  const undefinedSyms = dump.stdout.split('\n').map((line) => /^[0-9a-f]+ (.{7}) \*UND\*\s+[0-9a-f]+\s+(.*)$/.exec(line))
    .filter(Boolean).map(([line, flags, rest]) => ({
      line, weak: flags.includes('w'), version: /^\(([^)]+)\)/.exec(rest)?.[1], name: rest.trim().split(/\s+/).pop() }));
  assert.ok(undefinedSyms.length > 0, 'objdump -T listed no undefined symbols');
  const tooNew = undefinedSyms.filter((s) => s.version?.startsWith('GLIBC_') && newer(s.version.slice(6), '2.31')).map((s) => s.line);
  assert.deepEqual(tooNew, [], 'symbols that need glibc > 2.31');
  // An unversioned strong reference that is not node's would be unresolved on glibc 2.31
  // (the sysroot link leaves what 2.31 lacks undefined instead of failing).
  const unversioned = undefinedSyms.filter((s) => !s.version && !s.weak && !/^(napi_|node_api_)/.test(s.name)).map((s) => s.line);
  assert.deepEqual(unversioned, [], 'undefined symbols without a version, other than node\'s');
  // libstdc++ is linked statically: no GLIBCXX/CXXABI requirement on the GPU machine's.
  assert.deepEqual(undefinedSyms.filter((s) => /^(GLIBCXX|CXXABI)_/.test(s.version ?? '')).map((s) => s.line), [], 'references into a shared libstdc++');
});

test('the CUDA addon loads under glibc 2.31\'s own dynamic loader (RTLD_NOW)', { skip: skip || (!existsSync(loader) && `no glibc 2.31 run-time root at ${sysroot} (scripts/device/glibc-sysroot.sh makes it)`) }, () => {
  const libs = [join(sysroot, 'lib', 'x86_64-linux-gnu'), join(sysroot, 'usr', 'lib', 'x86_64-linux-gnu')].join(':');
  const script = `const os = require('os');
    const m = { exports: {} };
    process.dlopen(m, ${JSON.stringify(addon)}, os.constants.dlopen.RTLD_NOW);
    console.log(JSON.stringify({ glibc: process.report.getReport().header.glibcVersionRuntime, cuda: m.exports.backendInfo().cuda.compiled }));`;
  const run = spawnSync(loader, ['--library-path', libs, process.execPath, '-e', script], { encoding: 'utf8' });
  assert.equal(run.status, 0, `glibc 2.31 could not load the addon: ${run.stderr}`);
  assert.deepEqual(JSON.parse(run.stdout), { glibc: '2.31', cuda: true });
});
