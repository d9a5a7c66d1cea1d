// The report as a browser shows it: headless Chromium (Debian's chromium package) renders
// the page from disk, and the screenshots show every chart with its data drawn.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PNG } from 'pngjs';
import { buildReport, writeReport } from '../dist/report/index.js';
import { renderVegaLiteSvg } from '../dist/report/render-svg.js';
import { writeRun } from './helpers/report-runs.mjs';
import { chartsOf } from './helpers/report-html.mjs';
import { tempDir } from './helpers/temp-dir.mjs';

// CRAFTGRAD_CHROMIUM: a browser binary to use, or 'none' to skip this test.
function findChromium() {
  if (process.env.CRAFTGRAD_CHROMIUM === 'none') return undefined;
  for (const c of [process.env.CRAFTGRAD_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']) if (c && existsSync(c)) return c;
  const r = spawnSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Screenshot of a local HTML file; returns the decoded PNG. */
function screenshot(chromium, htmlPath, pngPath, width, height) {
  const profile = mkdtempSync(join(tmpdir(), 'craftgrad-chromium-'));
  try {
    const r = spawnSync(chromium, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--hide-scrollbars', '--force-device-scale-factor=1',
      `--user-data-dir=${profile}`, `--screenshot=${pngPath}`, `--window-size=${width},${height}`, pathToFileURL(htmlPath).href,
    ], { encoding: 'utf8', timeout: 90_000 });
    assert.ok(existsSync(pngPath), `chromium wrote no screenshot (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
  return PNG.sync.read(readFileSync(pngPath));
}

/** Pixels in a rectangle that are clearly coloured (data marks), not white, grey or black (axes, text, grid). */
function colouredPixels(png, x0, y0, w, h) {
  let n = 0;
  for (let y = y0; y < Math.min(png.height, y0 + h); ++y) {
    for (let x = x0; x < Math.min(png.width, x0 + w); ++x) {
      const i = (y * png.width + x) * 4;
      const r = png.data[i], g = png.data[i + 1], b = png.data[i + 2];
      if (Math.max(r, g, b) - Math.min(r, g, b) > 60) n++;
    }
  }
  return n;
}

function nonWhitePixels(png) {
  let n = 0;
  for (let i = 0; i < png.data.length; i += 4) if (png.data[i] < 235 || png.data[i + 1] < 235 || png.data[i + 2] < 235) n++;
  return n;
}

const CELL_W = 1100, CELL_H = 460, MIN_COLOURED = 400;

/**
 * One page with each chart's SVG (taken from the report) in a fixed cell, legends hidden,
 * so each cell's coloured pixels can only come from drawn data.
 */
function chartSheet(charts) {
  const cells = charts.map(([id, svg], i) =>
    `<div class="cell" style="top:${i * CELL_H}px" data-chart="${id}">${svg ?? ''}</div>`).join('\n');
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><style>
body { margin: 0; background: #fff; }
.cell { position: absolute; left: 0; width: ${CELL_W}px; height: ${CELL_H}px; overflow: hidden; }
.cell svg { max-width: 100%; max-height: 100%; }
.role-legend { display: none; }
</style></head><body>${cells}</body></html>`;
}

test('headless Chromium: the report renders and every chart shows its data', async (t) => {
  const chromium = findChromium();
  if (!chromium) {
    const reason = 'chromium is not installed (apt-get install chromium); the browser rendering test is skipped';
    console.log(reason);
    t.skip(reason);
    return;
  }
  const dir = tempDir(t, 'craftgrad-report-shot-');
  const runs = join(dir, 'runs');
  mkdirSync(runs);
  const baseline = writeRun(runs, 'baseline', { mode: 'baseline', seed: 1 });
  const craft = writeRun(runs, 'craft', { mode: 'craft', seed: 2 });
  const report = await writeReport([baseline, craft], join(dir, 'report.html'));

  // The whole page, as a user opens it from disk.
  const page = screenshot(chromium, report.path, join(dir, 'report.png'), 1400, 3000);
  assert.equal(page.width, 1400);
  assert.ok(nonWhitePixels(page) > 100_000, 'the page is drawn');

  // Each chart on its own, plus a control: the same kind of chart (axes, grid, legend) with
  // no data, which the check must see as empty.
  const charts = [...chartsOf(report.html)].map(([id, c]) => [id, c.svg]);
  assert.equal(charts.length, 10, 'nine line charts and one heatmap');
  assert.ok(charts.every(([, svg]) => svg), 'every chart has an SVG');
  const control = ['control-empty', await renderVegaLiteSvg({
    width: 560, height: 240, data: { values: [] }, mark: 'line',
    encoding: { x: { field: 'step', type: 'quantitative' }, y: { field: 'value', type: 'quantitative' }, color: { field: 'run', type: 'nominal', scale: { domain: ['baseline', 'craft'] } } },
  })];
  assert.equal(chartsOf((await buildReport([baseline])).html).get('retention').svg, undefined, 'a baseline has no retention chart');
  const sheetPath = join(dir, 'sheet.html');
  writeFileSync(sheetPath, chartSheet([...charts, control]));
  const sheet = screenshot(chromium, sheetPath, join(dir, 'sheet.png'), CELL_W, CELL_H * (charts.length + 1));
  const counts = {};
  charts.forEach(([id], i) => (counts[id] = colouredPixels(sheet, 0, i * CELL_H, CELL_W, CELL_H)));
  const controlCount = colouredPixels(sheet, 0, charts.length * CELL_H, CELL_W, CELL_H);
  console.log(`coloured pixels per chart: ${JSON.stringify(counts)}; empty control: ${controlCount}`);
  for (const [id, n] of Object.entries(counts)) assert.ok(n >= MIN_COLOURED, `chart ${id} shows data (${n} coloured pixels)`);
  assert.ok(controlCount < MIN_COLOURED, `the empty control is seen as empty (${controlCount})`);

  // Keep the screenshots for a human when asked (CRAFTGRAD_REPORT_SHOTS=dir).
  const keep = process.env.CRAFTGRAD_REPORT_SHOTS;
  if (keep) {
    mkdirSync(keep, { recursive: true });
    for (const f of ['report.html', 'report.png', 'sheet.png']) writeFileSync(join(keep, f), readFileSync(join(dir, f)));
  }
});

/** The report page with a probe script appended (its CSP, which forbids scripts, removed) that lists each card's widths. */
function layoutProbe(html) {
  const probe = `<script>addEventListener('load', () => {
  const cards = [...document.querySelectorAll('figure.chart')].map((f) => {
    const svg = f.querySelector('.svg');
    return { id: f.dataset.chart, card: [f.scrollWidth, f.clientWidth], svg: [svg.scrollWidth, svg.clientWidth] };
  });
  const pre = document.createElement('pre');
  pre.id = 'layout';
  pre.textContent = JSON.stringify({ page: [document.documentElement.scrollWidth, document.documentElement.clientWidth], cards });
  document.body.appendChild(pre);
});</script>`;
  const out = html.replace(/<meta http-equiv="Content-Security-Policy"[^>]*>/, '').replace('</body>', `${probe}</body>`);
  assert.notEqual(out, html, 'the probe was added');
  return out;
}

function layoutAt(chromium, htmlPath, width) {
  const profile = mkdtempSync(join(tmpdir(), 'craftgrad-chromium-'));
  try {
    const r = spawnSync(chromium, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--force-device-scale-factor=1', `--user-data-dir=${profile}`,
      `--window-size=${width},2000`, '--dump-dom', pathToFileURL(htmlPath).href,
    ], { encoding: 'utf8', timeout: 90_000, maxBuffer: 64 << 20 });
    const m = /<pre id="layout">([^<]*)<\/pre>/.exec(r.stdout ?? '');
    assert.ok(m, `chromium gave no layout (status ${r.status}, signal ${r.signal}):\n${r.stderr}`);
    return JSON.parse(m[1].replace(/&quot;/g, '"').replace(/&amp;/g, '&'));
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

test('headless Chromium: every chart fits its card at 1400 px and 900 px (no horizontal scrollbar)', async (t) => {
  const chromium = findChromium();
  if (!chromium) {
    const reason = 'chromium is not installed (apt-get install chromium); the layout check is skipped';
    console.log(reason);
    t.skip(reason);
    return;
  }
  const dir = tempDir(t, 'craftgrad-report-layout-');
  // A long run too, so the heatmap is at its widest.
  const baseline = writeRun(dir, 'baseline', { mode: 'baseline', seed: 1 });
  const craft = writeRun(dir, 'craft', { mode: 'craft', seed: 2, steps: 600 });
  const report = await buildReport([baseline, craft]);
  const probePath = join(dir, 'probe.html');
  writeFileSync(probePath, layoutProbe(report.html));
  for (const width of [1400, 900]) {
    const layout = layoutAt(chromium, probePath, width);
    assert.equal(layout.cards.length, 10, `${width} px: every chart card measured`);
    for (const c of layout.cards) {
      assert.ok(c.card[1] > 300, `${width} px: card ${c.id} has a width (${c.card[1]})`);
      assert.ok(c.card[0] <= c.card[1], `${width} px: card ${c.id} overflows (scrollWidth ${c.card[0]} > clientWidth ${c.card[1]})`);
      assert.ok(c.svg[0] <= c.svg[1], `${width} px: chart ${c.id} overflows its card (scrollWidth ${c.svg[0]} > clientWidth ${c.svg[1]})`);
    }
    assert.ok(layout.page[0] <= layout.page[1], `${width} px: the page scrolls sideways (${layout.page[0]} > ${layout.page[1]})`);
  }
});
