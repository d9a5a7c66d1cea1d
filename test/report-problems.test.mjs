// Broken runs: the report says what is missing or skipped, draws what it can, never throws.
import test from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildReport, parseMetricsJsonl } from '../dist/report/index.js';
import { makeRows, writeRun } from './helpers/report-runs.mjs';
import { chartsOf, pageText } from './helpers/report-html.mjs';
import { tempDir } from './helpers/temp-dir.mjs';

const lines = (rows) => rows.map((r) => JSON.stringify(r) + '\n').join('');

async function reportOf(dir) {
  const report = await buildReport([dir]);
  return { report, text: pageText(report.html), charts: chartsOf(report.html) };
}

test('empty metrics.jsonl: the page says no steps were logged; every chart is a placeholder', async (t) => {
  const dir = join(tempDir(t, 'craftgrad-report-bad-'), 'run');
  mkdirSync(dir);
  writeFileSync(join(dir, 'metrics.jsonl'), '');
  const { text, charts, report } = await reportOf(dir);
  assert.match(text, /Missing or skipped data/);
  assert.match(text, /metrics\.jsonl is empty: no steps were logged/);
  assert.match(text, /config\.json is missing/);
  for (const [id, c] of charts) assert.equal(c.empty, true, `${id} is a placeholder`);
  assert.match(pageText(charts.get('loss').html), /no data: no run logged action_loss, val_action_loss/);
  assert.equal(report.summaries[0].steps, undefined);
  assert.match(text, /run \(no steps\)|run — —/, 'summary row with dashes');
});

test('missing metrics.jsonl and a directory that does not exist', async (t) => {
  const parent = tempDir(t, 'craftgrad-report-bad-');
  const dir = join(parent, 'run');
  mkdirSync(dir);
  let { text } = await reportOf(dir);
  assert.match(text, /metrics\.jsonl is missing: no metrics to plot/);
  ({ text } = await reportOf(join(parent, 'nope')));
  assert.match(text, /nope is not a directory: nothing to report/);
});

test('partial file (last line cut by a kill): the complete rows are drawn and the cut is reported', async (t) => {
  const dir = writeRun(tempDir(t, 'craftgrad-report-bad-'), 'craft', { mode: 'craft', steps: 50 });
  const path = join(dir, 'metrics.jsonl');
  truncateSync(path, statSync(path).size - 40);
  const { text, charts, report } = await reportOf(dir);
  assert.match(text, /metrics\.jsonl: the last line \(50\) is cut off and was skipped/);
  assert.equal(report.summaries[0].steps, 49);
  for (const id of ['loss', 'retention', 'lambda', 'conflict-ratio', 'grad-norm', 'lr', 'throughput']) assert.ok(charts.get(id).svg, id);
});

test('malformed lines are skipped and listed by line number and reason', async (t) => {
  const dir = writeRun(tempDir(t, 'craftgrad-report-bad-'), 'craft', { mode: 'craft', steps: 30 });
  const rows = makeRows('craft', 30, 1);
  const text0 = [
    lines(rows.slice(0, 10)),
    '{"step": 11, "action_loss": 0.3\n', // torn in the middle of the file (damage, not a kill)
    'not json at all\n',
    '[1, 2, 3]\n',
    '{"action_loss": 0.2}\n',
    '{"step": 12, "action_loss": "high"}\n',
    '{"step": 13, "action_loss": 0.2, "mystery": 1, "grad_norm": null}\n',
    '\n',
    lines(rows.slice(13)),
  ].join('');
  writeFileSync(join(dir, 'metrics.jsonl'), text0);
  const { text, report } = await reportOf(dir);
  assert.match(text, /skipped 2 lines with not valid JSON \(lines 11, 12\)/);
  assert.match(text, /skipped 1 line with not a JSON object \(line 13\)/);
  assert.match(text, /skipped 1 line with no numeric step \(line 14\)/);
  assert.match(text, /skipped 1 line with a value that is not a number \(line 15\)/);
  assert.match(text, /ignored unknown keys mystery/);
  assert.equal(report.summaries[0].rows, 10 + 1 + 1 + 17, 'step 12 row kept without its bad value; 13 kept');
  assert.equal(report.summaries[0].steps, 30);
});

test('steps that restart (an interrupted run resumed without truncation): the later rows win', () => {
  const rows = makeRows('baseline', 10, 1);
  const { rows: got, problems } = parseMetricsJsonl(lines(rows.slice(0, 8)) + lines(rows.slice(5)));
  assert.deepEqual(got.map((r) => r.step), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.match(problems.join('\n'), /steps restart at line 9 \(step 6\); the 3 earlier rows from that step on are replaced/);
});

test('non-finite values (null in JSON) are left out, not crashes; an all-null metric is "no data"', async (t) => {
  const dir = writeRun(tempDir(t, 'craftgrad-report-bad-'), 'base', { mode: 'baseline', steps: 40 });
  const rows = makeRows('baseline', 40, 1).map((r, i) => ({ ...r, action_loss: i === 7 ? null : r.action_loss, samples_per_s: null }));
  writeFileSync(join(dir, 'metrics.jsonl'), lines(rows));
  const { charts, report } = await reportOf(dir);
  assert.ok(charts.get('loss').svg);
  assert.equal(charts.get('throughput').empty, true);
  assert.equal(report.summaries[0].finalAction.step, 40);
});

test('malformed config.json and a damaged conflict log are reported; the curves are still drawn', async (t) => {
  const dir = writeRun(tempDir(t, 'craftgrad-report-bad-'), 'craft-dir', { mode: 'craft', steps: 30 });
  writeFileSync(join(dir, 'config.json'), '{"name": "cut');
  appendFileSync(join(dir, 'conflicts.bin'), Buffer.from([1, 2, 3]));
  let { text, report, charts } = await reportOf(dir);
  assert.match(text, /config\.json could not be read and was ignored/);
  assert.equal(report.runs[0].label, 'craft-dir');
  assert.match(text, /conflicts\.bin: a cut-off last record \(3 bytes\) was skipped/);
  assert.ok(charts.get('conflicts-1').svg, 'heatmap of the whole records');
  writeFileSync(join(dir, 'conflicts.json'), '{"format": "something-else"}');
  ({ text, charts } = await reportOf(dir));
  assert.match(text, /the conflict log could not be read \(.*format is "something-else"/);
  assert.equal(charts.get('conflicts-1').empty, true);
  assert.ok(charts.get('loss').svg);
});

test('a baseline run next to a broken one: the page names the broken run only', async (t) => {
  const parent = tempDir(t, 'craftgrad-report-bad-');
  const good = writeRun(parent, 'good', { mode: 'baseline', steps: 20 });
  const bad = join(parent, 'bad');
  mkdirSync(bad);
  writeFileSync(join(bad, 'metrics.jsonl'), '\u0000\u0001garbage\n');
  const report = await buildReport([good, bad]);
  const problems = pageText(/<div class="problems"[\s\S]*?<\/div>/.exec(report.html)[0]);
  assert.match(problems, /bad .*skipped 1 line with not valid JSON \(line 1\)/);
  assert.match(problems, /metrics\.jsonl has no usable rows/);
  assert.doesNotMatch(problems, /\bgood\b/);
  assert.ok(chartsOf(report.html).get('loss').svg);
});
