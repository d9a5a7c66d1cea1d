// A metrics file open for appending: each write goes straight to the file (a kill -9 loses
// nothing already written), flush() makes it durable, close() flushes and closes.
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { appendAll } from './fsio.js';
import { RunError } from './run-error.js';

export class AppendFile {
  private fd: number | undefined;

  /** Opens `path` for appending (`append`) or as a new, empty file. */
  constructor(readonly path: string, append: boolean) {
    try {
      this.fd = openSync(path, append ? 'a' : 'w');
    } catch (e) {
      throw RunError.fromFs(e, path, 'cannot open the metrics file');
    }
  }

  write(text: string): void {
    if (this.fd === undefined) throw new RunError('the sink is closed', { path: this.path });
    appendAll(this.fd, text);
  }

  flush(): void {
    if (this.fd !== undefined) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    closeSync(this.fd);
    this.fd = undefined;
  }
}
