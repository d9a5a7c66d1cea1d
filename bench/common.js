// Recording benchmark results in bench/RESULTS.md (repository only; not shipped).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';

/** Replaces (or appends) the section between the markers of `id` in bench/RESULTS.md. */
export function recordSection(id, markdown) {
  const file = new URL('./RESULTS.md', import.meta.url);
  const start = `<!-- ${id}:start -->`, end = `<!-- ${id}:end -->`;
  let text = existsSync(file) ? readFileSync(file, 'utf8')
    : '# Benchmark results\n\nEvery figure is a ratio to a baseline or to a physical floor measured in the same run.\n';
  const block = `${start}\n${markdown.trim()}\n${end}`;
  const i = text.indexOf(start), j = text.indexOf(end);
  text = i >= 0 && j > i ? text.slice(0, i) + block + text.slice(j + end.length) : `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
}
