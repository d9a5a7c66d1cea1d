// Files that replace what a user may already have there (an adapter directory, a policy
// file) are written under a temporary sibling name, fsynced, renamed over the target and
// the directory fsynced: a crash leaves the old file or the new one, never a torn one.
import { rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fsyncDirAsync } from '../../run/fsio.js';

/** Runs `write(tmp)` (which must fsync what it writes), then renames tmp over `path`. */
export async function publishFile(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    await write(tmp);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDirAsync(dirname(path));
}
