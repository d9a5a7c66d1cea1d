// The public API is the product, not the inside (src/index.ts states the rule): the package
// root gives what the README documents, the formats and the reports have their own entry
// points (package.json "exports", resolved here by package name through the package's
// self-reference), and the implementation's helpers are not exported.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** Names the README imports from `specifier` in its js examples. */
function readmeImports(specifier) {
  const names = new Set();
  for (const m of readme.matchAll(/import\s*\{([^}]*)\}\s*from\s*'([^']+)'/g)) {
    if (m[2] !== specifier) continue;
    for (const n of m[1].split(',')) if (n.trim()) names.add(n.trim().replace(/^type\s+/, ''));
  }
  return [...names];
}

// What only the implementation uses (run-directory repair, file-format and CRC internals): never on the root.
const INTERNALS = [
  'repairCheckpointsDir', 'float32Groups', 'truncateJsonl', 'truncateCsv', 'jsonlLine', 'csvLine', 'CSV_HEADER',
  'shellQuote', 'resumeCommand', 'SIGNAL_EXIT_CODES', 'configHash', 'diffConfigs', 'checkResumeConfig', 'writeConfigFile',
  'RESUME_MUTABLE_KEYS', 'stepDirName', 'parseStepDirName', 'listCheckpointDirs', 'pruneCheckpoints', 'checkJsonValue',
  'checkMetricsRow', 'formatStepLine', 'RUN_FILES', 'conflictRecordBytes', 'parseConflictLogHeader',
  'maskCrc', 'frameRecord', 'crc32', 'crc32c', 'crcImplementation', 'readZip', 'writeZip', 'SAFETENSORS_MAX_HEADER',
];

test('the package root exports every name the README imports from it', async () => {
  const api = await import('craftgrad');
  const documented = readmeImports('craftgrad');
  assert.ok(documented.includes('Trainer') && documented.includes('surgery'), 'the README imports from craftgrad');
  for (const name of documented) assert.ok(name in api, `craftgrad exports ${name}`);
  // The product's groups: surgery, GradSet, the Trainer and its sources, models, datasets, formats.
  for (const name of ['surgery', 'GradSet', 'Trainer', 'HostGradientSource', 'AdapterPolicySource', 'AdapterPolicy',
    'syntheticDataset', 'loadDatasetFile', 'readSafetensorsFile', 'readTfEvents', 'loadCheckpoint', 'RunDirectory',
    'Qwen2Policy', 'Qwen2PolicySource', 'loadHfModel', 'loadSequenceDatasetFile', 'readPeftAdapter', 'readPolicyFile']) {
    assert.equal(typeof api[name], 'function', `craftgrad exports ${name}`);
  }
});

test("the implementation's helpers are not exported from the root or craftgrad/formats", async () => {
  const api = await import('craftgrad');
  const formats = await import('craftgrad/formats');
  for (const name of INTERNALS) {
    assert.ok(!(name in api), `craftgrad does not export ${name}`);
    assert.ok(!(name in formats), `craftgrad/formats does not export ${name}`);
  }
  // The reports are a separate entry point, not the root's.
  assert.ok(!('buildReport' in api), 'buildReport is in craftgrad/report, not the root');
  // GradSet's native handles are reached by a module-private accessor, not a static.
  for (const name of ['internals', 'adopt']) assert.equal(staticOf(api.GradSet, name), undefined, `GradSet.${name}`);
});

function staticOf(cls, name) {
  return Object.getOwnPropertyDescriptor(cls, name);
}

test('craftgrad/formats and craftgrad/report resolve by package name and give their groups', async () => {
  const formats = await import('craftgrad/formats');
  const report = await import('craftgrad/report');
  const api = await import('craftgrad');
  for (const name of ['encodeSafetensors', 'decodeSafetensors', 'readSafetensorsFile', 'writeSafetensorsFile', 'encodeNpy',
    'decodeNpy', 'readNpyFile', 'encodeNpz', 'decodeNpz', 'readNpzFile', 'writeNpzFile', 'TfEventsWriter', 'readTfEvents', 'FormatError']) {
    assert.equal(typeof formats[name], 'function', `craftgrad/formats exports ${name}`);
    assert.equal(api[name], formats[name], `the root's ${name} is the same object`);
  }
  for (const name of ['buildReport', 'writeReport', 'writeRunReport', 'loadRun', 'loadRuns', 'summarize', 'compareRuns']) {
    assert.equal(typeof report[name], 'function', `craftgrad/report exports ${name}`);
  }
  // A round trip through the subpath, so the entry is the working module and not a stub.
  const bytes = formats.encodeSafetensors({ w: { dtype: 'F32', shape: [2], data: new Float32Array([1.5, -2]) } });
  assert.deepEqual([...formats.decodeSafetensors(bytes).tensors.w.data], [1.5, -2]);
});

test('every entry of package.json "exports" is emitted by tsc, with its types', () => {
  const entries = Object.entries(pkg.exports).filter(([k]) => k !== './package.json');
  assert.deepEqual(entries.map(([k]) => k).sort(), ['.', './formats', './report']);
  for (const [key, target] of entries) {
    for (const file of [target.types, target.default]) assert.ok(existsSync(join(root, file)), `${key}: ${file} exists (npx tsc)`);
  }
});

test("craftgrad/formats and craftgrad/report work without loading craftgrad's native addon", () => {
  const script = "await import('craftgrad/formats'); await import('craftgrad/report');" +
    "const { createRequire } = await import('node:module');" +
    "console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache).filter((k) => k.endsWith('.node'))));";
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const loaded = JSON.parse(r.stdout);
  assert.deepEqual(loaded.filter((p) => /craftgrad\.node$/.test(p)), [], `loaded ${loaded.join(', ')}`);
  // The same probe sees the addon when the root is imported, so the check can fail.
  const rootProbe = spawnSync(process.execPath, ['--input-type=module', '-e', script.replace("await import('craftgrad/formats');", "await import('craftgrad');")],
    { cwd: root, encoding: 'utf8' });
  assert.equal(rootProbe.status, 0, rootProbe.stderr);
  assert.ok(JSON.parse(rootProbe.stdout).some((p) => /craftgrad\.node$/.test(p)), 'the probe sees the addon the root loads');
});
