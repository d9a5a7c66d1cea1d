// One writer per run directory: two processes appending to the same metrics files and
// pruning each other's checkpoints would corrupt the run. The lock file holds the pid; a
// lock left by a killed process (kill -9, power cut) is stale and taken over.
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { RunError } from './run-error.js';

export const LOCK_FILE = 'run.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

/** Takes the run directory's lock; returns a release function (also run at process exit). */
export function lockRunDir(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw RunError.fromFs(e, path, 'cannot create the run lock');
      const pid = Number.parseInt(readFileSync(path, 'utf8'), 10);
      // Our own pid counts as alive: a second RunDirectory in this process is refused too.
      if (Number.isSafeInteger(pid) && (pid === process.pid || alive(pid))) {
        throw new RunError(`the run is in use by process ${pid}`, { path, code: 'LOCKED' });
      }
      rmSync(path, { force: true }); // stale: its process is gone
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    const release = (): void => {
      process.off('exit', release);
      try {
        if (Number.parseInt(readFileSync(path, 'utf8'), 10) === process.pid) rmSync(path, { force: true });
      } catch {
        // already gone
      }
    };
    process.on('exit', release);
    return release;
  }
  throw new RunError('cannot take the run lock', { path, code: 'LOCKED' });
}
