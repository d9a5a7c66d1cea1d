// The options of `craftgrad train`, generated from the one table of training options
// (src/train/options.ts): yargs gets its options (types, groups, descriptions, the defaults
// shown in --help) and the command the mapping to the run's configuration. yargs itself
// sets no defaults: an option that is absent from the command line, the environment and
// the config file is absent from argv, so a resume can tell what was asked for from what
// the saved run already has.
import type { Options } from 'yargs';
import type { TrainRunConfig } from '../train/run-config.js';
import { CONFIG_OPTIONS, configKey, flagName, kebabCase, OPTION_GROUPS, type OptionGroup, type TrainingOption } from '../train/options.js';

/** The options the table applies from argv (the command resolves the others itself). */
const APPLIED = CONFIG_OPTIONS.filter((o) => !o.resolvedByCommand);

/** A config key's flag, without the dashes: batch_size -> batch-size. */
export function flag(key: string): string {
  const o = CONFIG_OPTIONS.find((row) => configKey(row) === key);
  return o ? flagName(o) : kebabCase(key);
}

function shownDefault(o: TrainingOption): string {
  if (o.shownDefault !== undefined) return o.shownDefault;
  const v = o.default;
  if (v === null) return 'none';
  if (Array.isArray(v)) return v.length ? v.join(' ') : 'none';
  return String(v);
}

/** --help lists the groups in this order, each option in the table's order within its group. */
const HELP_GROUPS: readonly OptionGroup[] = ['data', 'train', 'craft', 'model', 'run'];

/** The yargs options of `train`, without defaults (see the file comment). */
export function yargsTrainOptions(): Record<string, Options> {
  const out: Record<string, Options> = {};
  for (const group of HELP_GROUPS) {
    for (const s of CONFIG_OPTIONS.filter((row) => row.group === group)) {
      const o: Options = { type: s.type, group: OPTION_GROUPS[group], describe: s.describe, defaultDescription: shownDefault(s) };
      if (s.choices) o.choices = s.choices;
      if (s.array) o.array = true;
      if (s.aliases) o.alias = [...s.aliases];
      out[flagName(s)] = o;
    }
  }
  const RUN = OPTION_GROUPS.run;
  out.resume = { type: 'string', group: RUN, describe: 'Continue the run in RUN_DIR from its newest valid checkpoint', requiresArg: true };
  out.quiet = { type: 'boolean', group: RUN, describe: 'No progress display (train_progress.log is still written)' };
  return out;
}

/** Checks the values yargs parsed: one clear message naming the option. */
export function checkTrainValues(argv: Record<string, unknown>): true {
  for (const s of APPLIED) {
    const raw = argv[flagName(s)];
    if (raw === undefined) continue;
    const name = `--${flagName(s)}`;
    // yargs collects a repeated option into an array: say so rather than "must be a number".
    if (!s.array && Array.isArray(raw)) throw new Error(`${name} is given ${raw.length} times (${raw.map(String).join(', ')}): give it once`);
    const values = s.array ? (raw as unknown[]) : [raw];
    for (const v of values) {
      if (s.type !== 'number') {
        if (s.type === 'string' && (typeof v !== 'string' || v === '')) throw new Error(`${name} needs a value`);
        continue;
      }
      if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`${name} must be a number`);
      if (!Number.isFinite(v)) throw new Error(`${name} must be finite, got ${v}`);
      if (s.int !== undefined && (!Number.isInteger(v) || v < s.int)) throw new Error(`${name} must be an integer >= ${s.int}, got ${v}`);
      if (s.min !== undefined && (s.exclusive ? v <= s.min : v < s.min)) throw new Error(`${name} must be ${s.exclusive ? '>' : '>='} ${s.min}, got ${v}`);
      if (s.max !== undefined && v >= s.max) throw new Error(`${name} must be < ${s.max}, got ${v}`);
    }
  }
  return true;
}

/** The run configuration: `base` (the defaults, or a resumed run's saved config) with every given option applied. */
export function applyOptions(base: TrainRunConfig, argv: Record<string, unknown>): TrainRunConfig {
  const c: Record<string, unknown> = { ...base };
  for (const s of APPLIED) {
    const v = argv[flagName(s)];
    if (v !== undefined) c[configKey(s)] = s.array ? [...(v as number[])] : v;
  }
  return c as unknown as TrainRunConfig;
}
