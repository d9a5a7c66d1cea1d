// --config FILE: options from a JSON or YAML file. Keys may be written like the flags
// (batch-size), in snake_case (batch_size, as config.json of a run has them) or camelCase;
// a run's own config.json ({schema_version, config: {...}}) works too, to repeat a run.
// Bounded: the file is refused past OPTIONS_FILE_MAX_BYTES (256 KiB; real ones are a few
// KB) before it is read, since YAML parsing holds up to ~500× its text; the yaml package's
// own maxAliasCount (100) stops alias-expansion bombs.
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { FormatError } from '../formats/errors.js';
import { OPTIONS_FILE_MAX_BYTES, readTextFileSync } from '../formats/fileio.js';
import { UsageError } from './usage-error.js';

export function readOptionsFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readTextFileSync(path, 'options file', OPTIONS_FILE_MAX_BYTES);
  } catch (e) {
    if (e instanceof FormatError) throw new UsageError(`--config ${e.message}`);
    throw new UsageError(`--config ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let data: unknown;
  try {
    data = ['.yaml', '.yml'].includes(extname(path).toLowerCase()) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--config ${path}: not valid ${extname(path) === '.json' ? 'JSON' : 'JSON or YAML'}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new UsageError(`--config ${path}: must hold an object of options`);
  const record = data as Record<string, unknown>;
  const options = typeof record.schema_version === 'number' && record.config && typeof record.config === 'object'
    ? (record.config as Record<string, unknown>) : record;
  const fromRun = options !== record;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) {
    if (v === null) continue; // null in a saved config means "the default"
    if (fromRun && k === 'name') continue; // repeating a run makes a new run, with a new name
    out[k.replace(/_/g, '-')] = v;
  }
  return out;
}
