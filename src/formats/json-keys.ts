// JSON.parse keeps the last of duplicate keys without a word. A safetensors header with
// a tensor named twice is ambiguous (two readers may disagree on which one is meant),
// so we list the top-level keys of the raw text ourselves to find duplicates.

/** Top-level object keys of `text`, in order, duplicates kept. `text` must be valid JSON. */
export function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false; // at depth 1, after '{' or ',' the next string is a key
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(start, i + 1)) as string);
      expectKey = false;
    } else if (ch === '{' || ch === '[') {
      depth++;
      expectKey = depth === 1 && ch === '{';
    } else if (ch === '}' || ch === ']') {
      depth--;
    } else if (ch === ',') {
      expectKey = depth === 1;
    }
  }
  return keys;
}
