// How many action placeholders a VLA-Adapter directory's prompts end with: the rows of its
// action_queries.weight, read from the safetensors header alone (model.safetensors, or the
// shard model.safetensors.index.json names for it), as training reads them
// (src/train/session-vla.ts: the directory's queries, else upstream's NUM_TOKENS = 64).
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from '../../formats/errors.js';
import { parseSafetensorsHeader, readHeaderLength } from '../../formats/safetensors.js';
import { HF_INDEX_FILE, HF_WEIGHTS_FILE, isFile, readJsonFile } from '../hf-weights.js';
import { ACTION_QUERIES } from './weights.js';
import { DEFAULT_ACTION_QUERIES } from './directory.js';

async function headerEntries(path: string): Promise<ReturnType<typeof parseSafetensorsHeader>['entries']> {
  const fh = await open(path, 'r');
  try {
    const { size } = await fh.stat();
    const prefix = new Uint8Array(8);
    await fh.read(prefix, 0, 8, 0);
    const n = readHeaderLength(prefix, size, path);
    const header = new Uint8Array(n);
    await fh.read(header, 0, n, 8);
    return parseSafetensorsHeader(header, size - 8 - n, path).entries;
  } finally {
    await fh.close();
  }
}

/**
 * action_queries.weight's rows in `dir`'s weights, with where the number came from; 64 (and
 * `from: 'default'`) when the weights hold no such tensor or the directory has no weights.
 */
export async function readActionQueryCount(dir: string): Promise<{ queries: number; from: string }> {
  let file = join(dir, HF_WEIGHTS_FILE);
  if (!(await isFile(file))) {
    const index = join(dir, HF_INDEX_FILE);
    if (!(await isFile(index))) return { queries: DEFAULT_ACTION_QUERIES, from: 'default' };
    const json = await readJsonFile(index);
    const map = json !== null && typeof json === 'object' ? (json as { weight_map?: unknown }).weight_map : undefined;
    const shard = map !== null && typeof map === 'object' ? (map as Record<string, unknown>)[ACTION_QUERIES] : undefined;
    if (typeof shard !== 'string') return { queries: DEFAULT_ACTION_QUERIES, from: 'default' };
    file = join(dir, shard);
  }
  const entry = (await headerEntries(file)).find((e) => e.name === ACTION_QUERIES);
  if (entry === undefined) return { queries: DEFAULT_ACTION_QUERIES, from: 'default' };
  if (entry.shape.length !== 2 || entry.shape[0]! < 1) {
    throw new FormatError('safetensors', `must be (queries, hidden), got shape [${entry.shape.join(', ')}]`, { file, field: ACTION_QUERIES });
  }
  return { queries: entry.shape[0]!, from: file };
}
