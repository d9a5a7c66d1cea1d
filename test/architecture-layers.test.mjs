// The layers of docs/ARCHITECTURE.md §2, checked against the code: every relative import in
// src/ and every quoted #include in native/ must go to the same layer or one the table
// allows. A new dependency that breaks the picture fails here with the file and the line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function filesUnder(dir, suffixes) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path, suffixes));
    else if (suffixes.some((s) => entry.name.endsWith(s))) out.push(path);
  }
  return out;
}

// TypeScript layers, lowest first. `core` is the top-level src/*.ts (native loader, errors,
// devices, GradSet, surgery) except the public entry point index.ts.
const SRC_ALLOWED = {
  formats: [],
  core: ['formats'],
  data: ['core', 'formats'],
  model: ['core', 'data', 'run', 'formats'],
  run: ['core', 'formats'],
  parallel: ['core', 'data', 'run', 'formats'],
  train: ['core', 'data', 'model', 'run', 'parallel', 'formats'],
  report: ['core', 'run', 'formats'],
  bench: ['core', 'formats'],
  cli: ['core', 'data', 'model', 'run', 'parallel', 'train', 'report', 'bench', 'formats'],
  index: ['core', 'data', 'model', 'run', 'train', 'report', 'formats'],
  binding: [],
};

function srcLayerOf(absPath) {
  const rel = relative(root, absPath).split('\\').join('/');
  if (rel === 'binding.d.ts' || rel === 'binding.ts' || rel === 'binding.js') return 'binding';
  if (!rel.startsWith('src/')) return `outside:${rel}`;
  const parts = rel.slice(4).split('/');
  if (parts.length === 1) return parts[0] === 'index.ts' ? 'index' : 'core';
  return parts[0];
}

test('src/: every relative import goes to the same layer or a lower one', () => {
  const problems = [];
  for (const file of filesUnder(join(root, 'src'), ['.ts'])) {
    const from = srcLayerOf(file);
    const allowed = SRC_ALLOWED[from];
    assert.ok(allowed, `${relative(root, file)}: layer '${from}' is not in the table; add it to docs/ARCHITECTURE.md §2 and here`);
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      const m = /(?:from|import)\s*\(?\s*'(\.[^']+)'/.exec(line);
      if (!m) return;
      const target = resolve(dirname(file), m[1].replace(/\.js$/, '.ts'));
      const to = srcLayerOf(target);
      if (to === from || allowed.includes(to)) return;
      // The raw binding's types may be named anywhere; its values are reached through core only.
      if (to === 'binding' && (from === 'core' || /^\s*import type\b/.test(line))) return;
      problems.push(`${relative(root, file)}:${i + 1} (${from}) imports ${m[1]} (${to})`);
    });
  }
  assert.deepEqual(problems, [], `imports that break the layers:\n${problems.join('\n')}`);
});

// The raw binding (docs/ARCHITECTURE.md §2): src/native.ts loads it and the core modules call
// it; every other layer calls the named functions of src/native-calls.ts (core) instead. A
// line of another layer that imports a value from native.ts, or calls `binding.` or
// `binding[`, breaks the rule. Comments and string literals are not code.
function codeOf(line) {
  if (/^\s*(\/\/|\*|\/\*)/.test(line)) return '';
  return line.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g, "''").replace(/\/\/.*$/, '');
}

function bindingUse(line) {
  if (/^\s*import\s+(?!type\b)[^;]*from\s*'[^']*\/native\.js'/.test(line)) return 'imports the binding from native.ts';
  if (/\bbinding\s*[.[]/.test(codeOf(line))) return 'calls the raw binding';
  return undefined;
}

test('src/: only the core layer touches the raw binding; the other layers call src/native-calls.ts', () => {
  const problems = [];
  let checked = 0;
  for (const file of filesUnder(join(root, 'src'), ['.ts'])) {
    if (srcLayerOf(file) === 'core') continue;
    checked += 1;
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      const why = bindingUse(line);
      if (why) problems.push(`${relative(root, file)}:${i + 1} (${srcLayerOf(file)}) ${why}: ${line.trim()}`);
    });
  }
  assert.ok(checked > 50, `checked ${checked} files outside core`);
  assert.deepEqual(problems, [], `direct uses of the binding outside core (add a named function to src/native-calls.ts):\n${problems.join('\n')}`);
});

test('the binding check sees a direct call, and not a comment, a string or a type import', () => {
  for (const line of ["  binding.copy({ dst, src, count });", "    return binding.qwen2Step(args);", "const c = new binding.nccl.Communicator(o);",
    "x = binding['modelStep'](o);", "import { binding } from '../native.js';", "import { binding as b } from '../../native.js';"]) {
    assert.ok(bindingUse(line), line);
  }
  for (const line of ["// One native call per micro-batch (binding.qwen2Step)", "   * see binding.d.ts", "import type { RawMpi } from '../../binding.js';",
    "throw new Error('the binding.copy failed');", "native.copy({ dst, src, count });", "import type { NativeBinding } from '../native.js';"]) {
    assert.equal(bindingUse(line), undefined, line);
  }
});

// Native layers: core is backend-neutral C++; each backend sees core only (the CUDA backend
// also the NCCL and cuBLASLt loaders); data (the datasets' JPEG decoder and image work) sees
// core only; napi sees all.
const NATIVE_ALLOWED = {
  core: ['core'],
  models: ['core', 'models'],
  cpu: ['core', 'cpu'],
  cuda: ['core', 'cuda', 'nccl', 'cublaslt'],
  mpi: ['core', 'mpi'],
  nccl: ['core', 'nccl'],
  data: ['core', 'data'],
  cublaslt: ['core', 'cublaslt'],
  napi: ['core', 'models', 'cpu', 'cuda', 'mpi', 'nccl', 'cublaslt', 'data', 'napi'],
};
const SYSTEM_FORBIDDEN = {
  core: [/^napi\.h$/, /^node_api\.h$/, /^cuda/, /^cub\//, /^thrust\//],
  models: [/^napi\.h$/, /^node_api\.h$/, /^cuda/, /^cub\//, /^thrust\//],
  cpu: [/^napi\.h$/, /^node_api\.h$/, /^cuda/],
  cuda: [/^napi\.h$/, /^node_api\.h$/],
  mpi: [/^napi\.h$/, /^node_api\.h$/, /^cuda/],
  // NCCL is loaded with dlopen: its own header is never needed, nor CUDA's.
  nccl: [/^napi\.h$/, /^node_api\.h$/, /^cuda/, /^nccl\.h$/],
  // The datasets' image work is plain C++: no N-API, no CUDA.
  data: [/^napi\.h$/, /^node_api\.h$/, /^cuda/],
  // cuBLASLt likewise: no CUDA or cuBLAS header at build time.
  cublaslt: [/^napi\.h$/, /^node_api\.h$/, /^cuda/, /^cublas(Lt|_api|_v2)?\.h$/, /^library_types\.h$/],
  napi: [],
};

test('native/: core includes neither N-API nor CUDA; the backends include core only, never each other', () => {
  const problems = [];
  for (const layer of Object.keys(NATIVE_ALLOWED)) {
    const dir = join(root, 'native', layer);
    for (const file of filesUnder(dir, ['.h', '.cc', '.cu', '.cuh', '.inc'])) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        const m = /^\s*#\s*include\s*([<"])([^>"]+)[>"]/.exec(line);
        if (!m) return;
        const [, kind, name] = m;
        const where = `${relative(root, file)}:${i + 1}`;
        if (SYSTEM_FORBIDDEN[layer].some((re) => re.test(name))) {
          problems.push(`${where} (${layer}) includes ${kind}${name}`);
          return;
        }
        if (kind !== '"') return;
        const target = relative(join(root, 'native'), resolve(dirname(file), name)).split('\\').join('/');
        const to = target.split('/')[0];
        if (target.startsWith('..') || !(to in NATIVE_ALLOWED)) return; // outside native/: node-addon-api, system
        if (!NATIVE_ALLOWED[layer].includes(to)) problems.push(`${where} (${layer}) includes "${name}" (${to})`);
      });
    }
  }
  assert.deepEqual(problems, [], `includes that break the layers:\n${problems.join('\n')}`);
});

// ARCHITECTURE.md §8: the binding never names a backend's own functions. It reaches a backend
// through core/backend.h only; backends.cc, the one place a device name becomes a backend (and
// the build is described), is the only napi file that includes a backend's headers.
test('native/napi: only backends.cc includes a backend (cpu/, cuda/)', () => {
  const problems = [];
  for (const file of filesUnder(join(root, 'native', 'napi'), ['.h', '.cc'])) {
    if (file.endsWith(`${join('napi', 'backends.cc')}`)) continue;
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      const m = /^\s*#\s*include\s*"([^"]+)"/.exec(line);
      if (m && /^\.\.\/(cpu|cuda)\//.test(m[1])) problems.push(`${relative(root, file)}:${i + 1} includes "${m[1]}"`);
    });
  }
  assert.deepEqual(problems, [], `napi files that name a backend (go through core/backend.h, or backends.h):\n${problems.join('\n')}`);
});

// ARCHITECTURE.md §4c: a backend implements layers, never a model. No backend file includes a
// model's description (core/*_desc.h) or a model driver, and none defines a model step; every
// model is one driver in native/models, over core/layers.h alone.
test('native/cpu, native/cuda: no model-specific step; the models are drivers in native/models over core/layers.h', () => {
  const problems = [];
  for (const layer of ['cpu', 'cuda']) {
    for (const file of filesUnder(join(root, 'native', layer), ['.h', '.cc', '.cu', '.cuh', '.inc'])) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        const where = `${relative(root, file)}:${i + 1}`;
        const m = /^\s*#\s*include\s*"([^"]+)"/.exec(line);
        if (m && /(_desc\.h$|(^|\/)models\/)/.test(m[1])) problems.push(`${where} includes "${m[1]}"`);
        if (/\b(modelStep|qwen2Step)\w*\s*\(/.test(line.replace(/\/\/.*$/, ''))) problems.push(`${where} defines or calls a model step`);
      });
    }
  }
  assert.deepEqual(problems, [], `model code in a backend:\n${problems.join('\n')}`);
  // Each model's driver includes the layers and nothing of a backend (the include table above).
  for (const driver of ['adapter_policy.cc', 'qwen2_policy.cc']) {
    const text = readFileSync(join(root, 'native', 'models', driver), 'utf8');
    assert.match(text, /Layers& layers/, `${driver} is a driver over Layers`);
  }
});

test('the layer checks see the files they check (the tables cannot pass on an empty tree)', () => {
  assert.ok(filesUnder(join(root, 'src'), ['.ts']).length > 50);
  for (const layer of Object.keys(NATIVE_ALLOWED)) {
    assert.ok(filesUnder(join(root, 'native', layer), ['.h', '.cc', '.cu']).length > 0, layer);
  }
});
