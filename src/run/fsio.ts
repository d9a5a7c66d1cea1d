// Durable-write primitives. A rename is only crash-safe when the data was fsynced before
// it and the directory holding the new name is fsynced after it, so each step is here.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** fsyncs a directory so that entries created, renamed or removed in it are durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Async twin of fsyncDir. */
export async function fsyncDirAsync(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `data` to `path` (created or truncated) and fsyncs it before closing. */
export function writeFileSynced(path: string, data: string | Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Async twin of writeFileSynced. */
export async function writeFileSyncedAsync(path: string, data: string | Uint8Array): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` atomically: the content goes to a sibling temp file, fsynced, renamed
 * over `path`, then the directory is fsynced. A crash leaves the old or the new file,
 * never a mix (used to truncate metrics files on resume and to write config.json).
 */
export function replaceFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSynced(tmp, data);
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/** Appends text with plain write() calls, no fsync: what survives a kill -9 but not a power cut. */
export function appendAll(fd: number, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
}

/**
 * `mkdir -p` that always ends: each missing level is created on its own, from the
 * nearest existing ancestor down. Node's `mkdirSync(path, {recursive: true})` loops
 * forever (at 100% CPU, deaf to signals) under /proc and similar file systems that
 * answer ENOENT to every mkdir; this throws the first level's error instead.
 */
export function makeDirectory(path: string): void {
  const missing: string[] = [];
  let p = resolve(path);
  for (;;) {
    let isDir: boolean | undefined;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    if (isDir === true) break;
    if (isDir === false) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${p}'`), { code: 'ENOTDIR', path: p });
    missing.push(p);
    const parent = dirname(p);
    if (parent === p) break;
    p = parent;
  }
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e; // made by someone else meanwhile: fine
    }
  }
}
