// craftgrad train, baseline and CRaFT: val_retention_loss reaches metrics.jsonl, the
// metrics.csv column and the TensorBoard tag on validation steps, and the report compares.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readTfEvents, METRIC_KEYS } from '../dist/index.js';
import { tempDir } from './helpers/temp-dir.mjs';
import { metricsRows } from './helpers/run-files.mjs';
import { runCli } from './helpers/cli.mjs';


test('baseline and CRaFT runs log val_retention_loss in every metrics file; the report compares them', (t) => {
  const root = tempDir(t, 'craftgrad-valret-cli-');
  const cli = (args) => runCli(args, { cwd: root });
  const retention = {};
  for (const [name, extra] of [['baseline', ['--no-craft']], ['craft', []]]) {
    const r = cli(['train', ...extra, '--name', name, '--steps', '40', '--val-every', '20', '--save-every', '20', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    const dir = join(root, 'runs', name);
    const rows = metricsRows(dir, { wallClock: true });
    assert.deepEqual(rows.filter((x) => 'val_retention_loss' in x).map((x) => x.step), [20, 40], name);
    assert.ok(rows.every((x) => ('val_retention_loss' in x) === ('val_action_loss' in x)), `${name}: logged with val_action_loss`);
    if (name === 'baseline') assert.ok(rows.every((x) => !('retention_loss' in x) && !('lambda_after' in x)), 'baseline rows carry no CRaFT keys');
    retention[name] = rows.at(-1).val_retention_loss;
    const csv = readFileSync(join(dir, 'metrics.csv'), 'utf8').trim().split('\n');
    const col = METRIC_KEYS.indexOf('val_retention_loss');
    assert.equal(csv[0].split(',')[col], 'val_retention_loss');
    assert.equal(Number(csv.at(-1).split(',')[col]), retention[name]);
    const events = readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.'));
    const tagged = readTfEvents(join(dir, events[0])).filter((e) => e.scalars && 'val_retention_loss' in e.scalars);
    assert.deepEqual(tagged.map((e) => e.step), [20, 40]);
    assert.ok(Math.abs(tagged[1].scalars.val_retention_loss - retention[name]) <= 1e-7 * retention[name], 'float32 tag value');
  }
  assert.ok(retention.baseline > retention.craft, `the baseline drifts further (${retention.baseline} vs ${retention.craft})`);
  const r = cli(['report', 'runs/baseline', 'runs/craft', '-o', 'compare.html']);
  assert.equal(r.code, 0, r.stderr);
  const html = readFileSync(join(root, 'compare.html'), 'utf8');
  assert.match(html, /data-chart="val-retention"/);
  assert.match(html, /Differences are from the baseline run baseline/);
});
