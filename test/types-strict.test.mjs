// The public types compile in a consumer's project under the strictest common settings:
// strict, exactOptionalPropertyTypes, noUncheckedIndexedAccess, skipLibCheck false (so
// every .d.ts the package pulls in is checked too), module NodeNext. The consumer imports
// 'craftgrad' (a link to this checkout, resolved through package.json "exports" to
// dist/index.d.ts), 'craftgrad/formats' and 'craftgrad/report' (the subpath entries) and
// compiles the README's own examples, taken from README.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers/temp-dir.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');

/** The README's ```js block that contains `marker` (the test fails if there is none). */
function readmeExample(marker) {
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  const found = blocks.find((b) => b.includes(marker));
  assert.ok(found, `README.md has a js example containing ${JSON.stringify(marker)}`);
  return found;
}

// What the README's examples leave to the reader: their inputs, declared with the types a
// user would have.
const TRAINER_PRELUDE = `
declare const w1: Float32Array, w2: Float32Array;
declare const ga1: Float32Array, ga2: Float32Array, gr1: Float32Array, gr2: Float32Array;
declare const actionLoss: number;
declare const retentionLoss: number | undefined;
`;
const SURGERY_PRELUDE = `
declare const actFlat: Float32Array, retFlat: Float32Array;
`;

// Uses of the API a careful user writes: optional options passed as possibly-undefined
// values, which exactOptionalPropertyTypes rejects unless the type says `| undefined`.
const API_USE = `
import { Trainer, HostGradientSource, surgery, GradSet, type TrainerOptions, type SurgeryOptions } from 'craftgrad';
declare const maybe: number | undefined;
declare const maybeBool: boolean | undefined;
const source = new HostGradientSource({
  params: [new Float32Array(4)],
  compute: (_params, wantRetention) => ({ actionLoss: 1, gAct: [new Float32Array(4)],
    ...(wantRetention ? { retentionLoss: 0.5, gRet: [new Float32Array(4)] } : {}), samples: 1 }),
});
const options: TrainerOptions = { steps: 10, lr: maybe, clipNorm: maybe, warmup: maybe, projection: maybeBool };
const trainer = new Trainer(source, options);
const lr: number = trainer.options.lr;
const s: SurgeryOptions<GradSet> = { lambda: 0.5, eps: maybe, projection: maybeBool };
const set = GradSet.fromArrays([new Float32Array(2)]);
const first: Float32Array | undefined = set.toArrays()[0];
surgery(set, set, s);
export { lr, first };
`;

// The subpath entry points, typed: a user reading files and building a report.
const SUBPATH_USE = `
import { readSafetensorsFile, encodeNpz, readTfEvents, FormatError, type Tensor, type TfEvent } from 'craftgrad/formats';
import { buildReport, writeRunReport, type Report, type ReportOptions } from 'craftgrad/report';
const t: Tensor = { dtype: 'F32', shape: [1], data: new Float32Array(1) };
const npz: Uint8Array = encodeNpz({ t });
const events: TfEvent[] = readTfEvents('events.out.tfevents');
const options: ReportOptions = {};
async function use(): Promise<number> {
  const content = await readSafetensorsFile('w.safetensors');
  const report: Report = await buildReport(['runs/a'], options);
  const path: string | undefined = await writeRunReport('runs/a');
  return Object.keys(content.tensors).length + report.html.length + (path ?? '').length + npz.length + events.length;
}
export { use, FormatError };
`;

test('the public types compile under strict, exactOptionalPropertyTypes, noUncheckedIndexedAccess, skipLibCheck false', (t) => {
  const dir = tempDir(t, 'craftgrad-types-');
  mkdirSync(join(dir, 'node_modules', '@types'), { recursive: true });
  symlinkSync(root, join(dir, 'node_modules', 'craftgrad'), 'dir');
  symlinkSync(join(root, 'node_modules', '@types', 'node'), join(dir, 'node_modules', '@types', 'node'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      strict: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, noImplicitOverride: true,
      noPropertyAccessFromIndexSignature: true, skipLibCheck: false, module: 'NodeNext', moduleResolution: 'NodeNext',
      target: 'ES2022', lib: ['ES2022'], types: ['node'], noEmit: true,
    },
    include: ['*.ts'],
  }));
  writeFileSync(join(dir, 'trainer-example.ts'), TRAINER_PRELUDE + readmeExample('new Trainer(') + '\nexport {};\n');
  writeFileSync(join(dir, 'surgery-example.ts'), SURGERY_PRELUDE + readmeExample('surgery(act, ret') + '\nexport {};\n');
  writeFileSync(join(dir, 'api-use.ts'), API_USE);
  writeFileSync(join(dir, 'subpath-use.ts'), SUBPATH_USE);
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8' });
  assert.equal(tsc.status, 0, `tsc reported errors:\n${tsc.stdout}${tsc.stderr}`);
});
