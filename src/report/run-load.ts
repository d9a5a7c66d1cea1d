// Everything the report knows about one run directory: its label, its config (optional),
// its metric rows, its conflict log (optional) and the problems met while reading them.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { readConflictLog, type ConflictLog } from '../run/conflict-log.js';
import { readMetricsJsonl, type ReportRow } from './metrics-read.js';

export interface RunData {
  /** The directory as given and resolved. */
  dir: string;
  /** The run's name from config.json, else the directory name; made unique among the runs of one report. */
  label: string;
  config: Record<string, unknown> | undefined;
  rows: ReportRow[];
  conflicts: ConflictLog | null;
  /** What config.json says (craft: false or mode: 'baseline'), else 'craft' when any row has CRaFT keys, 'baseline' when rows exist without them. */
  mode: 'craft' | 'baseline' | 'unknown';
  /** The retention budget ε: the last logged retention_budget, else config.json's budget (a baseline logs none). */
  budget: number | undefined;
  problems: string[];
}

/** config.json as written by the run layer is {schema_version, craftgrad_version, config}; older or hand-made ones are flat. */
function configName(file: Record<string, unknown>): string | undefined {
  const inner = file.config;
  for (const c of [file, inner]) {
    if (c && typeof c === 'object' && typeof (c as Record<string, unknown>).name === 'string') {
      const name = ((c as Record<string, unknown>).name as string).trim();
      if (name) return name;
    }
  }
  return undefined;
}

/** The run's settings: the `config` object of config.json as the run layer writes it, or the flat file. */
function settings(file: Record<string, unknown> | undefined): Record<string, unknown> {
  const inner = file?.config;
  return inner && typeof inner === 'object' && !Array.isArray(inner) ? inner as Record<string, unknown> : file ?? {};
}

function configMode(c: Record<string, unknown>): 'craft' | 'baseline' | undefined {
  if (c.mode === 'baseline' || c.craft === false) return 'baseline';
  if (c.mode === 'craft' || c.craft === true) return 'craft';
  return undefined;
}

function configBudget(c: Record<string, unknown>): number | undefined {
  for (const v of [c.budget, c.retention_budget]) if (typeof v === 'number' && Number.isFinite(v) && v > 0) return v;
  return undefined;
}

function readConfig(dir: string, problems: string[]): Record<string, unknown> | undefined {
  const path = join(dir, 'config.json');
  if (!existsSync(path)) {
    problems.push('config.json is missing: the run is labelled by its directory name');
    return undefined;
  }
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
    problems.push('config.json is not a JSON object and was ignored');
  } catch (e) {
    problems.push(`config.json could not be read and was ignored (${(e as Error).message})`);
  }
  return undefined;
}

/** Loads one run directory. Never throws for what is in the directory; only problems are recorded. */
export function loadRun(dirArg: string): RunData {
  const dir = resolve(dirArg);
  const problems: string[] = [];
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) {
    problems.push(`${dirArg} is not a directory: nothing to report`);
    return { dir, label: basename(dir), config: undefined, rows: [], conflicts: null, mode: 'unknown', budget: undefined, problems };
  }
  const config = readConfig(dir, problems);
  const label = (config && configName(config)) ?? basename(dir);
  const metrics = readMetricsJsonl(join(dir, 'metrics.jsonl'));
  problems.push(...metrics.problems);
  let conflicts: ConflictLog | null = null;
  try {
    conflicts = readConflictLog(dir);
    if (conflicts && conflicts.droppedBytes > 0) problems.push(`conflicts.bin: a cut-off last record (${conflicts.droppedBytes} bytes) was skipped`);
  } catch (e) {
    problems.push(`the conflict log could not be read (${(e as Error).message}); no heatmap`);
  }
  const craft = metrics.rows.some((r) => r.retention_loss !== undefined || r.conflict_ratio !== undefined || r.lambda_after !== undefined);
  const mode = configMode(settings(config)) ?? (craft ? 'craft' : metrics.rows.length > 0 ? 'baseline' : 'unknown');
  let budget: number | undefined;
  for (const r of metrics.rows) if (typeof r.retention_budget === 'number' && Number.isFinite(r.retention_budget)) budget = r.retention_budget;
  budget ??= configBudget(settings(config));
  if (mode === 'craft' && metrics.rows.length > 0 && !conflicts && !problems.some((p) => p.startsWith('the conflict log'))) {
    problems.push('conflicts.json is missing: no heatmap of which tensors conflict');
  }
  return { dir, label, config, rows: metrics.rows, conflicts, mode, budget, problems };
}

/** Loads several runs and makes their labels unique (two runs named "craft" become "craft" and "craft (2)"). */
export function loadRuns(dirs: readonly string[]): RunData[] {
  const runs = dirs.map(loadRun);
  const seen = new Map<string, number>();
  for (const r of runs) {
    const n = (seen.get(r.label) ?? 0) + 1;
    seen.set(r.label, n);
    if (n > 1) r.label = `${r.label} (${n})`;
  }
  return runs;
}
