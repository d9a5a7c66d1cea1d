// The page `craftgrad data DIR --page FILE` writes: a few episodes of a robot dataset as the
// model sees them (each shown frame's camera views as PNG data URLs, augmentation included
// when asked) with their instructions, and each episode's normalised actions as one line per
// dim. Self-contained like the run report (html-page.ts): inline CSS and SVG, images as data
// URLs, no script, and a Content-Security-Policy that forbids any fetch.
import type { TopLevelSpec } from 'vega-lite';
import { escapeHtml } from './html-escape.js';
import { chartHtml } from './html-page.js';
import { renderVegaLiteSvg } from './render-svg.js';

export interface DataPageFrame {
  /** The step shown, and the sample (index in the exported file) that starts there. */
  step: number;
  sample: number;
  /** One PNG data URL per view. */
  views: string[];
}

export interface DataPageEpisode {
  episode: number;
  instruction: string;
  steps: number;
  /** Where the record is (shard and record). */
  where: string;
  frames: DataPageFrame[];
  /** steps × dims (row-major) values to plot, one line per dim. */
  actions: Float32Array;
  actionDims: number;
}

export interface DataPageParts {
  title: string;
  generated: string;
  /** Lines about the dataset (name, counts, statistics' origin). */
  about: string[];
  viewNames: string[];
  imageSize: number;
  /** How the frames were made, e.g. 'decoded and resized, no augmentation'. */
  pixels: string;
  /** The action plot's y axis title (short), and what the values are (under the plot). */
  actionsAxis: string;
  actionsNote: string;
  episodes: DataPageEpisode[];
}

const CSS = `
body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; max-width: 1500px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; }
h3 { font-size: 14px; margin: 0 0 6px; }
.meta { color: #666; font-size: 12px; } .about { font-size: 13px; } .about li { margin: 2px 0; }
.frames { display: flex; flex-wrap: wrap; gap: 10px; margin: 6px 0 12px; }
figure.frame { margin: 0; padding: 6px; border: 1px solid #e4e4e4; border-radius: 4px; }
figure.frame img { display: inline-block; margin-right: 2px; image-rendering: pixelated; width: 160px; height: 160px; }
figure.frame figcaption { font-size: 11px; color: #666; }
figure.chart { margin: 0; padding: 10px; border: 1px solid #e4e4e4; border-radius: 4px; max-width: 760px; }
figure.chart .svg svg { display: block; max-width: 100%; height: auto; }
figure.chart figcaption { font-size: 12px; color: #666; margin-top: 4px; }
`;

/** One line per action dim over the episode's steps (vega-lite). */
export function actionChartSpec(ep: DataPageEpisode, yTitle: string): TopLevelSpec {
  const values: { step: number; dim: string; value: number }[] = [];
  for (let t = 0; t < ep.steps; t++) {
    for (let d = 0; d < ep.actionDims; d++) values.push({ step: t, dim: `dim ${d}`, value: ep.actions[t * ep.actionDims + d]! });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 640,
    height: 200,
    data: { values },
    mark: { type: 'line', strokeWidth: 1.5 },
    encoding: {
      x: { field: 'step', type: 'quantitative', title: 'step' },
      y: { field: 'value', type: 'quantitative', title: yTitle },
      color: { field: 'dim', type: 'nominal', title: 'action dim', sort: values.slice(0, ep.actionDims).map((v) => v.dim), legend: { orient: 'right' } },
    },
  } as unknown as TopLevelSpec;
}

function frameHtml(ep: DataPageEpisode, f: DataPageFrame, views: readonly string[], size: number): string {
  const imgs = f.views.map((url, v) => `<img src="${url}" width="${size}" height="${size}" alt="${escapeHtml(`episode ${ep.episode}, step ${f.step}, ${views[v] ?? `view ${v}`}`)}" ` +
    `data-episode="${ep.episode}" data-step="${f.step}" data-sample="${f.sample}" data-view="${v}">`).join('');
  return `<figure class="frame">${imgs}<figcaption>step ${f.step} (sample ${f.sample})</figcaption></figure>`;
}

export async function dataPageHtml(p: DataPageParts): Promise<string> {
  const sections: string[] = [];
  for (const ep of p.episodes) {
    const svg = ep.steps > 0 ? await renderVegaLiteSvg(actionChartSpec(ep, p.actionsAxis)) : undefined;
    const chart = chartHtml({
      id: `actions-${ep.episode}`, title: `Actions of episode ${ep.episode}`, notes: [p.actionsNote],
      ...(svg !== undefined ? { svg } : { missing: 'no steps' }),
    });
    sections.push(`<section class="episode" data-episode="${ep.episode}">
<h2>Episode ${ep.episode}: <span class="instruction">${escapeHtml(ep.instruction)}</span></h2>
<div class="meta">${ep.steps} steps; ${escapeHtml(ep.where)}</div>
<div class="frames">${ep.frames.map((f) => frameHtml(ep, f, p.viewNames, p.imageSize)).join('\n')}</div>
${chart}
</section>`);
  }
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(p.title)}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${escapeHtml(p.title)}</h1>
<div class="meta">generated by craftgrad data, ${escapeHtml(p.generated)}</div>
<ul class="about">${p.about.map((l) => `<li>${escapeHtml(l)}</li>`).join('\n')}</ul>
<p class="about">Frames: ${escapeHtml(p.viewNames.join(' | '))}, ${p.imageSize}×${p.imageSize}, ${escapeHtml(p.pixels)}.</p>
${sections.join('\n')}
</body>
</html>
`;
}
