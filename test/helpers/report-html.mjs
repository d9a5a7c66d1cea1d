// Reading a report page back in tests: its charts by data-chart id, and the marks in an SVG.

/** Map of data-chart id -> { svg, empty, html } for every chart figure of the page. */
export function chartsOf(html) {
  const out = new Map();
  const re = /<figure class="([^"]*)" data-chart="([^"]+)"([^>]*)>([\s\S]*?)<\/figure>/g;
  for (const m of html.matchAll(re)) {
    const svg = /<svg[\s\S]*<\/svg>/.exec(m[4])?.[0];
    out.set(m[2], { svg, empty: m[3].includes('data-empty'), html: m[4] });
  }
  return out;
}

/** The drawn marks of one kind (line, rect, symbol) in a vega SVG: each with its path data and label. */
export function marksOf(svg, kind) {
  const groups = [...svg.matchAll(new RegExp(`<g class="mark-${kind} role-mark[^"]*"[^>]*>([\\s\\S]*?)</g>`, 'g'))];
  const marks = [];
  for (const g of groups) {
    for (const p of g[1].matchAll(/<path[^>]*>/g)) {
      marks.push({ label: /aria-label="([^"]*)"/.exec(p[0])?.[1] ?? '', d: / d="([^"]*)"/.exec(p[0])?.[1] ?? '' });
    }
  }
  return marks;
}

/** Text of the page without tags (for assertions on what it says). */
export function pageText(html) {
  return html.replace(/<svg[\s\S]*?<\/svg>/g, ' ').replace(/<[^>]+>/g, ' ').replace(/&lt;/g, '<').replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&').replace(/\s+/g, ' ');
}
