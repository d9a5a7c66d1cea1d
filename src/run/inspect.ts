// What a checkpoint or run directory holds, as data (for programs and the CLI's
// `inspect` command) and as text.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { readConfigFile, type RunConfig } from './config.js';
import { MANIFEST_FILE } from './checkpoint-layout.js';
import { checkCheckpoint, listCheckpointDirs } from './checkpoint-read.js';
import { RUN_FILES } from './run-directory.js';
import { RunError } from './run-error.js';

/** One checkpoint as inspect reports it. */
export interface CheckpointInspection {
  dir: string;
  step: number | undefined;
  valid: boolean;
  problems: string[];
  epoch?: number;
  lambda?: number;
  configHash?: string;
  files: { name: string; size: number }[];
  tensors: { group: string; name: string; dtype: string; shape: number[] }[];
}

/** A run directory as inspect reports it. */
export interface RunInspection {
  dir: string;
  config?: RunConfig;
  craftgradVersion?: string;
  /** Newest first. */
  checkpoints: CheckpointInspection[];
  /** The checkpoint a resume would start from. */
  resumeFrom?: string;
  metricsRows: number;
  lastLoggedStep?: number;
}

export type Inspection = { kind: 'checkpoint'; checkpoint: CheckpointInspection } | { kind: 'run'; run: RunInspection };

async function inspectCheckpoint(dir: string): Promise<CheckpointInspection> {
  const c = await checkCheckpoint(dir);
  const trainer = c.state?.trainer as Record<string, unknown> | undefined;
  const out: CheckpointInspection = {
    dir, step: c.step ?? c.manifest?.step, valid: c.valid, problems: c.problems,
    files: Object.entries(c.manifest?.files ?? {}).map(([name, e]) => ({ name, size: e.size })),
    tensors: [],
  };
  if (typeof trainer?.epoch === 'number') out.epoch = trainer.epoch;
  if (typeof trainer?.lambda === 'number') out.lambda = trainer.lambda;
  if (c.state) out.configHash = c.state.config_hash;
  for (const [group, ts] of Object.entries(c.shapes ?? {})) {
    for (const [name, t] of Object.entries(ts)) out.tensors.push({ group, name, dtype: t.dtype, shape: t.shape });
  }
  return out;
}

/**
 * Inspects a checkpoint directory (one with manifest.json or named step-NNNNNN) or a run
 * directory (one with config.json or checkpoints/). Every checkpoint is fully verified
 * (sizes, sha256, decoding), so this reads every byte.
 */
export async function inspect(path: string): Promise<Inspection> {
  if (!existsSync(path) || !statSync(path).isDirectory()) {
    throw new RunError('is not a directory (expected a run or checkpoint directory)', { path, code: 'ENOENT' });
  }
  if (existsSync(join(path, MANIFEST_FILE)) || /^step-\d+$/.test(basename(path))) {
    return { kind: 'checkpoint', checkpoint: await inspectCheckpoint(path) };
  }
  const configPath = join(path, RUN_FILES.config);
  const ckDir = join(path, RUN_FILES.checkpoints);
  if (!existsSync(configPath) && !existsSync(ckDir)) {
    throw new RunError(`holds neither ${RUN_FILES.config} nor ${RUN_FILES.checkpoints}/ nor ${MANIFEST_FILE}`, { path, code: 'NO_RUN' });
  }
  const run: RunInspection = { dir: path, checkpoints: [], metricsRows: 0 };
  if (existsSync(configPath)) {
    const cf = readConfigFile(configPath);
    run.config = cf.config;
    run.craftgradVersion = cf.craftgrad_version;
  }
  for (const { dir } of listCheckpointDirs(ckDir)) run.checkpoints.push(await inspectCheckpoint(dir));
  const first = run.checkpoints.find((c) => c.valid);
  if (first) run.resumeFrom = first.dir;
  const jsonl = join(path, RUN_FILES.jsonl);
  if (existsSync(jsonl)) {
    for (const line of readFileSync(jsonl, 'utf8').split('\n')) {
      try {
        const step = (JSON.parse(line) as { step?: unknown }).step;
        if (typeof step === 'number') {
          run.metricsRows++;
          run.lastLoggedStep = step;
        }
      } catch {
        // torn or empty line
      }
    }
  }
  return { kind: 'run', run };
}

function fmtBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

function formatCheckpoint(c: CheckpointInspection, withTensors: boolean): string[] {
  const head = `${c.dir}: step ${c.step ?? '?'}, ${c.valid ? 'valid' : 'INVALID'}` +
    (c.epoch !== undefined ? `, epoch ${c.epoch}` : '') + (c.lambda !== undefined ? `, λ ${c.lambda}` : '');
  const lines = [head];
  for (const p of c.problems) lines.push(`  problem: ${p}`);
  if (withTensors) {
    for (const f of c.files) lines.push(`  ${f.name}  ${fmtBytes(f.size)}`);
    for (const t of c.tensors) lines.push(`    ${t.group}/${t.name}  ${t.dtype} [${t.shape.join(', ')}]`);
  }
  return lines;
}

/** Human-readable text of an inspection. */
export function formatInspection(x: Inspection): string {
  if (x.kind === 'checkpoint') return formatCheckpoint(x.checkpoint, true).join('\n') + '\n';
  const r = x.run;
  const lines = [`run ${r.dir}` + (r.craftgradVersion ? ` (craftgrad ${r.craftgradVersion})` : '')];
  lines.push(`  metrics: ${r.metricsRows} rows` + (r.lastLoggedStep !== undefined ? `, last step ${r.lastLoggedStep}` : ''));
  lines.push(`  checkpoints: ${r.checkpoints.length}` + (r.resumeFrom ? `, resume from ${r.resumeFrom}` : ', none valid'));
  r.checkpoints.forEach((c, i) => lines.push(...formatCheckpoint(c, i === 0 || c.dir === r.resumeFrom).map((l) => '  ' + l)));
  return lines.join('\n') + '\n';
}
