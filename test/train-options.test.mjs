// One vocabulary of training options (src/train/options.ts): the CLI's flags, the run
// config's keys and the Trainer's option names come from one table, one to one, with one
// set of defaults; and the table changed nothing a user had: config.json of a default run
// is byte-identical to the one craftgrad 0.1.0 wrote (test/fixtures/default-run-config.json,
// written by `craftgrad train` before the table), and an older run's config.json still
// loads as options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Trainer, TRAINER_DEFAULTS } from '../dist/index.js';
import { TRAINING_OPTIONS, CONFIG_OPTIONS, configKey, flagName, snakeCase, kebabCase, trainerValue } from '../dist/train/options.js';
import { TRAIN_DEFAULTS } from '../dist/train/run-config.js';
import { trainerOptions } from '../dist/train/session.js';
import { yargsTrainOptions, applyOptions, checkTrainValues, flag } from '../dist/cli/train-options.js';
import { readOptionsFile } from '../dist/cli/config-file.js';
import { makeTask } from './helpers/train-task.mjs';

const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
/** The command's own options, not run options: they are not in config.json. */
const COMMAND_ONLY = ['resume', 'quiet'];

function assertOneToOne(pairs, what) {
  const left = new Map(), right = new Map();
  for (const [a, b] of pairs) {
    assert.ok(!left.has(a), `${what}: ${a} appears twice`);
    assert.ok(!right.has(b), `${what}: ${b} appears twice`);
    left.set(a, b);
    right.set(b, a);
  }
}

test("flags, config keys and the Trainer's option names correspond one to one through the table", () => {
  const flags = Object.keys(yargsTrainOptions()).filter((f) => !COMMAND_ONLY.includes(f));
  assert.deepEqual([...flags].sort(), CONFIG_OPTIONS.map(flagName).sort(), 'every flag of `train` is a row of the table');
  assert.deepEqual(Object.keys(TRAIN_DEFAULTS).sort(), CONFIG_OPTIONS.map(configKey).sort(), 'every config key is a row of the table');
  assertOneToOne(CONFIG_OPTIONS.map((o) => [flagName(o), configKey(o)]), 'flag <-> config key');
  assertOneToOne(CONFIG_OPTIONS.map((o) => [configKey(o), o.name]), 'config key <-> API name');
  // The Trainer's options, as the Trainer itself resolves them, are exactly the table's Trainer rows.
  const resolved = Object.keys(new Trainer(makeTask({ sizes: [3, 4] }).source, { steps: 10 }).options).filter((k) => k !== 'sinks' && k !== 'log');
  const trainerRows = TRAINING_OPTIONS.filter((o) => o.trainer);
  assert.deepEqual(resolved.sort(), trainerRows.map((o) => o.name).sort(), "the Trainer's options are the table's Trainer rows");
  assertOneToOne(trainerRows.filter((o) => !o.apiOnly).map((o) => [o.name, flagName(o)]), 'Trainer option <-> flag');
});

test('flags and keys derive from the camelCase name, except the overrides that keep older names', () => {
  const overrides = [];
  for (const o of CONFIG_OPTIONS) {
    assert.match(o.name, /^[a-z][a-zA-Z]*$/, `${o.name} is camelCase`);
    assert.match(configKey(o), /^[a-z]+(_[a-z]+)*$/, `${configKey(o)} is snake_case`);
    assert.match(flagName(o), /^[a-z]+(-[a-z]+)*$/, `${flagName(o)} is kebab-case`);
    assert.equal(flag(configKey(o)), flagName(o));
    if (configKey(o) !== snakeCase(o.name)) overrides.push(`${o.name}:${configKey(o)}`);
    assert.equal(flagName(o), kebabCase(configKey(o)), `--${flagName(o)} is the kebab form of ${configKey(o)}`);
  }
  // The Trainer's names that predate the table and differ from the CLI's: each one kept.
  assert.deepEqual(overrides.sort(), ['clipNorm:clip', 'lambdaLr:dual_lr', 'microBatches:grad_accum', 'mode:craft',
    'retentionBudget:budget', 'surgeryEps:eps', 'valTimeLimitMs:val_time_limit'].sort());
});

// Keys added after the fixtures were written (the Qwen2 backbone's options, #17; VLA-Adapter's,
// #27; the RLDS source's, #28): appended after the built-in model's rows, so what the fixtures hold keeps its bytes and
// its order.
const ADDED_SINCE = ['model', 'lora_targets', 'bridge_span', 'init_adapter', 'init_policy', 'head_noise', 'views', 'use_proprio', 'vla_config', 'stats', 'shuffle_buffer', 'precision'];
const addedDefaults = () => Object.fromEntries(ADDED_SINCE.map((k) => [k, TRAIN_DEFAULTS[k]]));

test("the default run's config.json is the one written before the table, with the keys added since after the built-in model's", () => {
  const saved = readFileSync(fixture('default-run-config.json'), 'utf8');
  const { schema_version, craftgrad_version, config } = JSON.parse(saved);
  // What `craftgrad train --name default` writes: the defaults, its name, the device it resolved.
  const now = { schema_version, craftgrad_version, config: { ...applyOptions({ ...TRAIN_DEFAULTS }, {}), name: config.name, device: config.device } };
  assert.deepEqual(Object.keys(now.config).filter((k) => !ADDED_SINCE.includes(k)), Object.keys(config), 'the fixture\'s keys, in its order');
  const at = Object.keys(now.config).indexOf('base_weights');
  assert.deepEqual(Object.keys(now.config).slice(at + 1, at + 1 + ADDED_SINCE.length), ADDED_SINCE, 'the added keys follow base_weights');
  // Without the added keys, byte for byte the fixture.
  const old = { ...now, config: Object.fromEntries(Object.entries(now.config).filter(([k]) => !ADDED_SINCE.includes(k))) };
  assert.equal(JSON.stringify(old, null, 2) + '\n', saved);
  assert.deepEqual(Object.fromEntries(ADDED_SINCE.map((k) => [k, now.config[k]])), addedDefaults());
});

test("an older run's config.json still loads as --config options and gives the same configuration", () => {
  const file = fixture('options-run-config.json');
  const saved = JSON.parse(readFileSync(file, 'utf8')).config;
  const argv = readOptionsFile(file);
  assert.equal(checkTrainValues(argv), true);
  const config = applyOptions({ ...TRAIN_DEFAULTS }, argv);
  // The name is not repeated (a new run), nor the device (the command resolves it); the rest
  // is, and the keys it predates take their defaults.
  assert.deepEqual({ ...config, name: saved.name, device: saved.device }, { ...saved, ...addedDefaults() });
  assert.notDeepEqual(config, { ...TRAIN_DEFAULTS, name: saved.name }, 'the fixture differs from the defaults, so the check can fail');
});

test("one set of defaults: the Trainer's are the run's, converted, but valEvery", () => {
  for (const o of TRAINING_OPTIONS.filter((row) => row.trainer && !row.trainer.required && !row.apiOnly)) {
    const expected = 'default' in o.trainer ? o.trainer.default : (o.trainer.fromConfig ?? ((v) => v))(TRAIN_DEFAULTS[configKey(o)]);
    assert.deepEqual(TRAINER_DEFAULTS[o.name], expected, `${o.name} (--${flagName(o)})`);
  }
  assert.equal(TRAINER_DEFAULTS.valEvery, 0);
  assert.equal(TRAIN_DEFAULTS.val_every, 100);
  assert.equal(TRAINER_DEFAULTS.valTimeLimitMs, TRAIN_DEFAULTS.val_time_limit * 1000);
  assert.equal(TRAINER_DEFAULTS.mode, TRAIN_DEFAULTS.craft ? 'craft' : 'baseline');
  assert.ok(Object.isFrozen(TRAINER_DEFAULTS) && Object.isFrozen(TRAINER_DEFAULTS.betas) && Object.isFrozen(TRAINER_DEFAULTS.decayAfter));
});

test('a run configuration becomes Trainer options through the table, non-default values included', () => {
  const c = { ...TRAIN_DEFAULTS, craft: false, grad_accum: 3, clip: 2, val_time_limit: 4, budget: 0.5, dual_lr: 7, eps: 1e-6, decay_after: [5] };
  const o = trainerOptions(c, [], () => {});
  assert.deepEqual(
    [o.mode, o.microBatches, o.clipNorm, o.valTimeLimitMs, o.retentionBudget, o.lambdaLr, o.surgeryEps, o.decayAfter, o.steps],
    ['baseline', 3, 2, 4000, 0.5, 7, 1e-6, [5], TRAIN_DEFAULTS.steps]);
});

test('the limits in the table are checked with a message naming the flag', () => {
  assert.throws(() => checkTrainValues({ lr: 0 }), /^Error: --lr must be > 0, got 0$/);
  assert.throws(() => checkTrainValues({ 'grad-accum': 1.5 }), /--grad-accum must be an integer >= 1, got 1.5/);
  assert.throws(() => checkTrainValues({ 'val-fraction': 1 }), /--val-fraction must be < 1, got 1/);
  assert.throws(() => checkTrainValues({ 'decay-after': [10, -1] }), /--decay-after must be an integer >= 1, got -1/);
  assert.equal(checkTrainValues({ lr: 0.5, 'val-fraction': 0 }), true);
});

// A value just outside a numeric row's limits, and one at its edge inside them (config units).
function edges(o) {
  if (o.int !== undefined) return { outside: o.int - 1, inside: o.int };
  if (o.min === undefined) return undefined;
  return o.exclusive ? { outside: o.min, inside: o.min + 0.5 } : { outside: o.min - 1, inside: o.min };
}

test("the Trainer and the CLI take every limit from the one table: each refuses a value just outside a Trainer row's limits", () => {
  const source = makeTask({ sizes: [3, 4] }).source;
  const rows = CONFIG_OPTIONS.filter((o) => o.trainer && o.type === 'number' && edges(o));
  assert.ok(rows.length >= 12, `${rows.length} numeric Trainer rows`);
  const trainer = (o, v) => new Trainer(source, { steps: 10, [o.name]: o.array ? [trainerValue(o, v)] : trainerValue(o, v) });
  for (const o of rows) {
    const { outside, inside } = edges(o);
    const flagValue = (v) => (o.array ? [v] : v);
    assert.throws(() => checkTrainValues({ [flagName(o)]: flagValue(outside) }), new RegExp(`--${flagName(o)} must be`), `--${flagName(o)} ${outside}`);
    assert.throws(() => trainer(o, outside), new RegExp(`^RangeError: options\\.${o.name}(\\[0\\])? must be`), `${o.name}: ${outside}`);
    assert.equal(checkTrainValues({ [flagName(o)]: flagValue(inside) }), true, `--${flagName(o)} ${inside}`);
    assert.doesNotThrow(() => trainer(o, inside), `${o.name}: ${inside}`);
  }
});

test('what the table refuses and the Trainer used to accept: lr 0, steps 0, decayAfter [0], valTimeLimitMs 0', () => {
  const source = makeTask({ sizes: [3, 4] }).source;
  assert.throws(() => new Trainer(source, { steps: 1, lr: 0 }), /^RangeError: options\.lr must be a finite number > 0, got 0$/);
  assert.throws(() => checkTrainValues({ lr: 0 }), /^Error: --lr must be > 0, got 0$/);
  assert.throws(() => new Trainer(source, { steps: 0 }), /^RangeError: options\.steps must be a positive integer, got number 0$/);
  assert.throws(() => new Trainer(source, { steps: 5, schedule: 'multistep', decayAfter: [0] }), /options\.decayAfter\[0\] must be a positive integer/);
  assert.throws(() => new Trainer(source, { steps: 1, valTimeLimitMs: 0 }), /options\.valTimeLimitMs must be a finite number > 0, got 0/);
  assert.throws(() => new Trainer(source, { steps: 1, betas: [0.9, 1] }), /options\.betas\[1\] must be < 1, got 1/);
  assert.throws(() => new Trainer(source, { steps: 1, mode: 'plain' }), /^RangeError: options\.mode must be one of 'craft', 'baseline', got string 'plain'$/);
  assert.throws(() => new Trainer(source, {}), /^TypeError: options\.steps is required$/);
  assert.equal(new Trainer(source, { steps: 1, lr: 1e-6 }).options.lr, 1e-6);
});
