// vega-lite spec -> SVG text, in Node with no browser: vega-lite compiles to a vega spec
// and vega's headless View renders it with its SVG string renderer (no canvas needed;
// text widths are estimated, which is why labels use the plain sans-serif font).
import type { TopLevelSpec } from 'vega-lite';

// Loaded on first use: the two libraries take ~150 ms to import, which every CLI command
// and every `import 'craftgrad'` would otherwise pay.
let libs: Promise<[typeof import('vega'), typeof import('vega-lite')]> | undefined;
function loadLibs() {
  libs ??= Promise.all([import('vega'), import('vega-lite')]);
  return libs;
}

/** Settings every chart shares, so the page looks like one document. */
export const CHART_CONFIG = {
  font: 'sans-serif',
  background: 'white',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
  title: { fontSize: 14 },
} as const;

export async function renderVegaLiteSvg(spec: TopLevelSpec): Promise<string> {
  const [{ parse, View }, { compile }] = await loadLibs();
  const withConfig = { ...spec, config: { ...CHART_CONFIG, ...(spec.config ?? {}) } } as TopLevelSpec;
  const vg = compile(withConfig).spec;
  // renderer 'none': no DOM; toSVG builds the scenegraph and serialises it. Data is always
  // inline, so vega's loader never fetches anything.
  const view = new View(parse(vg), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
