// Temporary directories for tests, always removed afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const remove = (dir) => rmSync(dir, { recursive: true, force: true });

/**
 * A fresh directory under the system's temp folder, removed when `t` ends: a test's
 * context, or node:test's `test` itself for a directory the whole file shares.
 */
export function tempDir(t, prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => remove(dir));
  return dir;
}

/** fn(dir) in a fresh temporary directory, removed when fn's promise settles (or it throws). */
export function withTempDir(prefix, fn) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return Promise.resolve().then(() => fn(dir)).finally(() => remove(dir));
}
