// The report's baseline-versus-CRaFT view: the comparison table and its differences from
// the baseline, the validation charts against the budget, moving averages over noisy
// series, and the run's mode and budget as config.json states them.
import test from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildReport, compareRuns, loadRun } from '../dist/report/index.js';
import { movingAverage, smoothingWindow } from '../dist/report/moving-average.js';
import { LINE_CHARTS, planLineChart } from '../dist/report/line-charts.js';
import { formatDifference } from '../dist/report/summary-table.js';
import { makeRows, writeRun } from './helpers/report-runs.mjs';
import { chartsOf, marksOf, pageText } from './helpers/report-html.mjs';
import { tempDir } from './helpers/temp-dir.mjs';

const lastVal = (rows, key) => rows.filter((r) => r[key] !== undefined).at(-1)[key];

test('comparison: final validation losses, × budget, and differences from the baseline', async (t) => {
  const dir = tempDir(t, 'craftgrad-compare-');
  const craft = writeRun(dir, 'c', { mode: 'craft', name: 'craft', seed: 2 });
  const baseline = writeRun(dir, 'b', { mode: 'baseline', name: 'baseline', seed: 1 });
  // The baseline need not come first: it is found by its mode.
  const report = await buildReport([craft, baseline]);
  const c = compareRuns(report.summaries);
  assert.equal(c.baseline, 'baseline');
  const rowsB = makeRows('baseline', 200, 1), rowsC = makeRows('craft', 200, 2);
  const [rc, rb] = c.rows;
  assert.equal(rc.label, 'craft');
  assert.equal(rc.valAction.value, lastVal(rowsC, 'val_action_loss'));
  assert.equal(rc.valRetention.value, lastVal(rowsC, 'val_retention_loss'));
  assert.equal(rc.valRetention.step, 200);
  assert.equal(rc.budget, 0.01);
  assert.equal(rc.budgetRatio, lastVal(rowsC, 'val_retention_loss') / 0.01);
  assert.equal(rc.valActionDiff.delta, lastVal(rowsC, 'val_action_loss') - lastVal(rowsB, 'val_action_loss'));
  assert.equal(rc.valRetentionDiff.delta, lastVal(rowsC, 'val_retention_loss') - lastVal(rowsB, 'val_retention_loss'));
  assert.equal(rc.valRetentionDiff.ratio, lastVal(rowsC, 'val_retention_loss') / lastVal(rowsB, 'val_retention_loss'));
  // The baseline's budget comes from its config.json (it logs no retention_budget), and it is the reference.
  assert.equal(rb.budget, 0.01);
  assert.ok(rb.budgetRatio > 30, 'the baseline drifted far past the budget');
  assert.equal(rb.valActionDiff, undefined);
  const text = pageText(report.html);
  assert.match(text, /What CRaFT buys/);
  assert.match(text, /baseline baseline [\d.]+ @200 reference [\d.]+ @200 [\d.]+× over reference/);
  assert.match(text, /craft CRaFT [\d.]+ @200 [+−][\d.e-]+ \([\d.]+×\) [\d.e-]+ @200 [\d.]+× (within|over) −[\d.e-]+ \([\d.e-]+×\)/);
  assert.match(text, /Differences are from the baseline run baseline/);
});

test('comparison without a baseline: values only, and the page says what to train', async (t) => {
  const dir = tempDir(t, 'craftgrad-compare-');
  const report = await buildReport([writeRun(dir, 'c', { mode: 'craft', seed: 2 })]);
  const c = compareRuns(report.summaries);
  assert.equal(c.baseline, undefined);
  assert.equal(c.rows[0].valActionDiff, undefined);
  assert.ok(c.rows[0].valRetention);
  assert.match(pageText(report.html), /No baseline among these runs \(train one with --no-craft\)/);
});

test('differences are signed, with the multiple of the baseline', () => {
  assert.equal(formatDifference({ delta: 0.0139, ratio: 1.261 }), '+0.0139 (1.261×)');
  assert.equal(formatDifference({ delta: -0.0181, ratio: 0.00705 }), '−0.0181 (0.00705×)');
  assert.equal(formatDifference({ delta: 0, ratio: 1 }), '±0 (1×)');
  assert.equal(formatDifference({ delta: 1, ratio: undefined }), '+1');
  assert.equal(formatDifference(undefined), '—');
});

test('mode and budget come from config.json as the run layer writes it (craft: false, budget)', (t) => {
  const dir = tempDir(t, 'craftgrad-compare-');
  const run = join(dir, 'r');
  mkdirSync(run);
  // Rows with CRaFT keys would say 'craft': config.json wins.
  writeFileSync(join(run, 'config.json'), JSON.stringify({ schema_version: 1, craftgrad_version: '0.1.0', config: { name: 'b', craft: false, budget: 2e-4 } }));
  writeFileSync(join(run, 'metrics.jsonl'), JSON.stringify({ step: 1, action_loss: 0.5, val_retention_loss: 0.01 }) + '\n');
  const r = loadRun(run);
  assert.equal(r.mode, 'baseline');
  assert.equal(r.budget, 2e-4);
  writeFileSync(join(run, 'config.json'), JSON.stringify({ config: { craft: true, budget: 2e-4 } }));
  writeFileSync(join(run, 'metrics.jsonl'), JSON.stringify({ step: 1, action_loss: 0.5, retention_budget: 3e-4 }) + '\n');
  const c = loadRun(run);
  assert.equal(c.mode, 'craft');
  assert.equal(c.budget, 3e-4, 'the logged budget is the one in force');
});

test('moving average: centred, shrinking at the ends, exact on a line', () => {
  assert.deepEqual(movingAverage([1, 2, 3, 4, 5], 3), [1.5, 2, 3, 4, 4.5]);
  assert.deepEqual(movingAverage([1, 2, 3, 4, 5], 1), [1, 2, 3, 4, 5]);
  assert.deepEqual(movingAverage([4, 4, 4, 4], 5), [4, 4, 4, 4]);
  assert.deepEqual(movingAverage([0, 10, 0, 10, 0, 10], 2), [0, 5, 5, 5, 5, 5]);
  assert.deepEqual(movingAverage([], 3), []);
  assert.throws(() => movingAverage([1], 0), /window must be a positive integer/);
  assert.equal(smoothingWindow(10), 3);
  assert.equal(smoothingWindow(1500), 39); // 1500 / 40 = 37.5, rounded to 38, made odd
  assert.equal(smoothingWindow(100_000), 101);
  assert.equal(smoothingWindow(1500) % 2, 1);
});

test('charts: validation retention of both runs with the budget line; noisy series smoothed; validation drawn last', async (t) => {
  const dir = tempDir(t, 'craftgrad-compare-');
  const baseline = writeRun(dir, 'b', { mode: 'baseline', name: 'baseline', seed: 1 });
  const craft = writeRun(dir, 'c', { mode: 'craft', name: 'CRaFT', seed: 2 });
  const report = await buildReport([baseline, craft]);
  const charts = chartsOf(report.html);
  for (const id of ['val-loss', 'val-retention']) {
    const lines = marksOf(charts.get(id).svg, 'line');
    const runs = new Set(lines.map((l) => /run: ([^;]+)/.exec(l.label)?.[1]));
    assert.deepEqual([...runs].sort(), ['CRaFT', 'baseline'], `${id}: both runs`);
    assert.equal(marksOf(charts.get(id).svg, 'symbol').length, 20, `${id}: 10 validation points per run`);
  }
  const budget = marksOf(charts.get('val-retention').svg, 'line').filter((l) => /series: budget ε/.test(l.label));
  assert.equal(budget.length, 2, 'a budget line per run');
  assert.match(charts.get('val-retention').html, /log scale/, 'a baseline 40× over the budget needs a log scale');

  // Smoothed: a faint raw line and its moving average per run, and a note saying which is which.
  const runs = report.runs;
  for (const id of ['conflict-ratio', 'throughput']) {
    const def = LINE_CHARTS.find((d) => d.id === id);
    const plan = planLineChart(def, runs, runs.map((r) => r.label));
    const layers = plan.spec.layer;
    assert.equal(layers[0].mark.strokeOpacity, 0.3, `${id}: raw values faint, drawn first`);
    const values = plan.spec.data.values.filter((p) => p.run === 'CRaFT');
    const raw = values.filter((p) => p.style === 'raw').map((p) => p.value);
    const avg = values.filter((p) => p.style === 'line').map((p) => p.value);
    assert.equal(raw.length, 200);
    assert.deepEqual(avg, movingAverage(raw, smoothingWindow(200)));
    const spread = (xs) => Math.max(...xs) - Math.min(...xs);
    assert.ok(spread(avg) < spread(raw), `${id}: the average is smoother than the raw series`);
    assert.ok(plan.notes.some((n) => /moving average over 5 steps/.test(n)), plan.notes.join('; '));
  }
  // The validation series is the last layer (points on top of the training curve).
  const loss = planLineChart(LINE_CHARTS.find((d) => d.id === 'loss'), runs, runs.map((r) => r.label));
  const last = loss.spec.layer.at(-1);
  assert.equal(last.mark.type, 'point');
  assert.deepEqual(last.transform[0].filter.oneOf, ['points']);
  assert.ok(loss.spec.data.values.filter((p) => p.style === 'points').every((p) => p.series === 'validation'));
});
