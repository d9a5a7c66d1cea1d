// The report of realistic runs (baseline and CRaFT, 200 steps): every chart drawn with its
// data, the summary numbers, labels, a self-contained page, the CLI.
import test from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { readConflictLog } from '../dist/index.js';
import { buildReport, writeRunReport, binConflicts } from '../dist/report/index.js';
import { makeRows, writeRun, TENSOR_NAMES } from './helpers/report-runs.mjs';
import { chartsOf, marksOf, pageText } from './helpers/report-html.mjs';
import { tempDir } from './helpers/temp-dir.mjs';
import { runCli } from './helpers/cli.mjs';

const LINE_CHARTS = ['loss', 'retention', 'lambda', 'conflict-ratio', 'grad-norm', 'lr', 'throughput'];

test('report of baseline and CRaFT: every chart drawn, runs overlaid and labelled', async (t) => {
  const dir = tempDir(t, 'craftgrad-report-');
  const baseline = writeRun(dir, 'run-a', { mode: 'baseline', name: 'baseline', seed: 1 });
  const craft = writeRun(dir, 'run-b', { mode: 'craft', name: 'CRaFT', seed: 2 });
  const report = await buildReport([baseline, craft]);
  const charts = chartsOf(report.html);
  for (const id of LINE_CHARTS) {
    const c = charts.get(id);
    assert.ok(c && c.svg && !c.empty, `chart ${id} has an SVG`);
    const lines = marksOf(c.svg, 'line');
    assert.ok(lines.length >= 1, `chart ${id} has line marks`);
    for (const l of lines) assert.ok((l.d.match(/L/g) ?? []).length >= 8, `chart ${id}: a line with data (${l.label})`);
    const runsDrawn = new Set(lines.map((l) => /run: ([^;]+)/.exec(l.label)?.[1]));
    const expected = ['retention', 'lambda', 'conflict-ratio'].includes(id) ? ['CRaFT'] : ['baseline', 'CRaFT'];
    assert.deepEqual([...runsDrawn].sort(), expected.sort(), `chart ${id} overlays ${expected}`);
    assert.match(c.svg, /<text[^>]*>CRaFT<\/text>/, `chart ${id} has the legend label`);
  }
  // Validation points and the budget line are there.
  assert.ok(marksOf(charts.get('loss').svg, 'symbol').length >= 20, 'validation points (10 per run)');
  assert.ok(marksOf(charts.get('retention').svg, 'line').some((l) => /series: budget ε/.test(l.label)), 'budget line');
  // Heatmap: only for the CRaFT run, with rects.
  const heat = charts.get('conflicts-2');
  assert.ok(heat?.svg, 'heatmap of the CRaFT run');
  assert.equal(charts.has('conflicts-1'), false, 'no heatmap for the baseline');
  const rects = marksOf(heat.svg, 'rect');
  const log = readConflictLog(craft);
  const ones = log.flags.reduce((a, b) => a + b, 0);
  assert.equal(rects.length, ones, 'one rect per conflict (not binned at 200 steps × 24 tensors)');
  assert.ok(rects.every((r) => /^M[\d.]+,[\d.]+h[\d.]+v[\d.]+h-[\d.]+Z$/.test(r.d)), 'rects with size');

  // Summary table numbers.
  const [sb, sc] = report.summaries;
  const rowsB = makeRows('baseline', 200, 1), rowsC = makeRows('craft', 200, 2);
  assert.equal(sb.label, 'baseline');
  assert.equal(sb.mode, 'baseline');
  assert.equal(sc.mode, 'craft');
  assert.equal(sb.steps, 200);
  assert.equal(sb.finalAction.value, rowsB[199].action_loss);
  assert.equal(sb.bestAction.value, Math.min(...rowsB.map((r) => r.action_loss)));
  assert.equal(sb.finalVal.step, 200);
  assert.equal(sb.bestVal.value, Math.min(...rowsB.filter((r) => r.val_action_loss !== undefined).map((r) => r.val_action_loss)));
  assert.ok(Math.abs(sc.totalMs - rowsC.reduce((a, r) => a + r.step_ms, 0)) < 1e-6);
  assert.ok(Math.abs(sc.meanConflictRatio - rowsC.reduce((a, r) => a + r.conflict_ratio, 0) / 200) < 1e-12);
  assert.equal(sc.finalBudget, 0.01);
  assert.equal(sb.finalRetention, undefined);
  const text = pageText(report.html);
  assert.match(text, /final retention \/ budget/);
  assert.match(text, /CRaFT CRaFT 200 /, 'CRaFT row');
  assert.match(text, /0\.01306 \/ 0\.01 over/, 'retention over its budget is flagged');
  assert.doesNotMatch(text, /Missing or skipped data/, 'nothing missing in complete runs');
});

test('the page is self-contained: no scripts, no external references, a CSP that forbids fetching', async (t) => {
  const dir = tempDir(t, 'craftgrad-report-');
  const report = await buildReport([writeRun(dir, 'craft', { mode: 'craft' })]);
  const html = report.html;
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none'/);
  assert.doesNotMatch(html, /<script|<link|<img|<iframe|@import|url\((?!#)/i); // url(#clipN): clip paths inside the SVG
  const urls = [...html.matchAll(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"'<]*/gi)].map((m) => m[0]);
  assert.deepEqual([...new Set(urls)].sort(), ['http://www.w3.org/1999/xlink', 'http://www.w3.org/2000/svg'], 'only XML namespace names');
});

test('labels: config name, else the directory name; duplicates made unique; names are escaped', async (t) => {
  const dir = tempDir(t, 'craftgrad-report-');
  const a = writeRun(dir, 'a', { mode: 'baseline', name: 'same' });
  const b = writeRun(dir, 'b', { mode: 'craft', name: 'same' });
  const c = writeRun(dir, 'dir-label', { mode: 'baseline' });
  rmSync(join(c, 'config.json'));
  const d = writeRun(dir, 'd', { mode: 'baseline', name: '<b>&"bold"' });
  const report = await buildReport([a, b, c, d]);
  assert.deepEqual(report.runs.map((r) => r.label), ['same', 'same (2)', 'dir-label', '<b>&"bold"']);
  assert.doesNotMatch(report.html, /<b>&"bold"/, 'not raw HTML');
  assert.match(report.html, /&lt;b&gt;&amp;&quot;bold&quot;/);
  assert.match(pageText(report.html), /config\.json is missing: the run is labelled by its directory name/);
});

test('a single baseline run: CRaFT-only charts say why they are empty', async (t) => {
  const dir = tempDir(t, 'craftgrad-report-');
  const report = await buildReport([writeRun(dir, 'base', { mode: 'baseline' })]);
  const charts = chartsOf(report.html);
  for (const id of ['retention', 'lambda', 'conflict-ratio']) {
    assert.equal(charts.get(id).empty, true, id);
    assert.match(pageText(charts.get(id).html), /exist only in CRaFT runs, and every run here is a baseline/);
  }
  assert.match(pageText(charts.get('conflicts').html), /baseline runs do no gradient surgery/);
  for (const id of ['loss', 'grad-norm', 'lr', 'throughput']) assert.ok(charts.get(id).svg, id);
});

test('heatmap binning: many steps and tensors become frequency bins', () => {
  const k = 450, n = 1000;
  const names = Array.from({ length: k }, (_, i) => `t${i}`);
  const flags = new Uint8Array(n * k);
  for (let s = 0; s < n; ++s) for (let t = 0; t < k; ++t) flags[s * k + t] = t < 225 && s % 2 === 0 ? 1 : 0;
  const b = binConflicts({ names, steps: Array.from({ length: n }, (_, i) => 5 * (i + 1)), flags, droppedBytes: 0 });
  assert.equal(b.stepBins, 400);
  assert.equal(b.rows.length, 200);
  assert.ok(b.cells.every((c) => c.freq > 0 && c.freq <= 1));
  assert.ok(b.cells.length <= 400 * 200);
  // Tensors 0..224 conflict on every other step: their bins' frequency is about 1/2.
  const top = b.cells.filter((c) => c.tensor.startsWith('0–'));
  assert.ok(top.length > 0 && top.every((c) => c.freq > 0.3 && c.freq < 0.7));
  assert.equal(b.cells[0].x0, 5);
});

test('writeRunReport writes RUN_DIR/report.html', async (t) => {
  const dir = tempDir(t, 'craftgrad-report-');
  const run = writeRun(dir, 'craft', { mode: 'craft' });
  const path = await writeRunReport(run);
  assert.equal(path, join(run, 'report.html'));
  assert.match(readFileSync(path, 'utf8'), /^<!DOCTYPE html>/);
});

test('craftgrad report: default output paths, -o, usage errors', (t) => {
  const dir = tempDir(t, 'craftgrad-report-');
  const a = writeRun(dir, 'baseline', { mode: 'baseline' });
  const b = writeRun(dir, 'craft', { mode: 'craft', conflicts: false });
  const cli = (args, cwd = dir) => runCli(args, { cwd, timeout: 120_000 });
  let r = cli(['report', 'craft']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /report of 1 run written to .*craft\/report\.html \(9 charts; 1 notes/);
  assert.ok(existsSync(join(b, 'report.html')));
  r = cli(['report', a, b]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(join(dir, 'report.html')), 'several runs: in the current directory');
  r = cli(['report', a, b, '-o', join(dir, 'compare.html')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(pageText(readFileSync(join(dir, 'compare.html'), 'utf8')), /no conflict log in this run directory/);
  for (const [args, pattern] of [
    [['report'], /'report' needs at least 1 argument, got 0/],
    [['report', 'nope'], /not a run directory: nope/],
    [['report', 'craft', '-o', join(dir, 'no', 'x.html')], /--output: the directory of .* does not exist/],
    [['report', 'craft', '--ouput', 'x'], /did you mean '--output'/],
  ]) {
    r = cli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('fixture sanity: the conflict log follows num_conflicts', (t) => {
  const dir = tempDir(t, 'craftgrad-report-');
  const run = writeRun(dir, 'craft', { mode: 'craft' });
  const log = readConflictLog(run);
  const rows = makeRows('craft', 200, 1);
  assert.deepEqual(log.names, TENSOR_NAMES);
  rows.forEach((r, s) => assert.equal(log.flags.subarray(s * 24, (s + 1) * 24).reduce((a, b) => a + b, 0), r.num_conflicts));
});
