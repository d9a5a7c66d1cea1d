// TensorBoard event-file writer. A file is a sequence of TFRecords:
//   u64 LE length | u32 LE masked CRC32C(length bytes) | data | u32 LE masked CRC32C(data)
// each data being a protobuf `Event` (tensorflow/core/util/event.proto):
//   Event { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3;
//           Summary summary = 5; SessionLog session_log = 6; ... } }
//   Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
//   SessionLog { SessionStatus status = 1; string checkpoint_path = 2; string msg = 3; }
//
// Resuming: after a restart from a checkpoint at step S, the points already written
// for steps >= S are stale. Write `addSessionLog(S, 'START')` first thing after the
// resume: TensorBoard then purges, for every tag, the earlier-written events whose step
// is >= S ("orphaned" data), so curves show one continuous run instead of a zigzag.
import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { crc32c } from './crc.js';
import { FormatError } from './errors.js';
import { ProtoWriter } from './protobuf.js';

export type SessionStatus = 'STATUS_UNSPECIFIED' | 'START' | 'STOP' | 'CHECKPOINT';

/** SessionLog.SessionStatus enum values on the wire. */
export const SESSION_STATUS: Readonly<Record<SessionStatus, number>> = {
  STATUS_UNSPECIFIED: 0, START: 1, STOP: 2, CHECKPOINT: 3,
};

export const FILE_VERSION = 'brain.Event:2';

const MASK_DELTA = 0xa282ead8;

/** The TFRecord CRC mask: rotate right by 15, add a constant (mod 2^32). */
export function maskCrc(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

/** Frames one record (length, masked CRCs) around `data`. */
export function frameRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length + 4);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(data.length), true);
  dv.setUint32(8, maskCrc(crc32c(out.subarray(0, 8))), true);
  out.set(data, 12);
  dv.setUint32(12 + data.length, maskCrc(crc32c(data)), true);
  return out;
}

export interface TfEventsWriterOptions {
  /** Host name in the file name; default os.hostname(). */
  hostname?: string;
  /** Appended to the file name (e.g. ".train"); TensorBoard only needs "tfevents" in it. */
  filenameSuffix?: string;
  /** Wall time (seconds) used for the file name and the first event; default now. */
  wallTime?: number;
}

export interface SessionLogOptions {
  checkpointPath?: string;
  msg?: string;
  wallTime?: number;
}

// Writes made per process, so two writers opened in the same second never share a name.
let writerCounter = 0;
// Pending bytes beyond which records go to the OS without waiting for flush().
const AUTO_WRITE_BYTES = 64 * 1024;

export class TfEventsWriter {
  /** Full path of the event file. */
  readonly path: string;
  private fd: number | undefined;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;

  /**
   * Creates `dir` if needed and a new file
   * `events.out.tfevents.<unix secs>.<hostname>.<pid>.<n><suffix>` in it (the name
   * PyTorch's SummaryWriter uses; pid and per-process counter keep writers apart, and
   * the file is opened exclusively, so an existing file is never overwritten). The first
   * record, file_version "brain.Event:2", is written at once.
   */
  constructor(dir: string, options: TfEventsWriterOptions = {}) {
    const wallTime = options.wallTime ?? Date.now() / 1000;
    const host = options.hostname ?? osHostname();
    const name = `events.out.tfevents.${Math.floor(wallTime)}.${host}.${process.pid}.${writerCounter++}${options.filenameSuffix ?? ''}`;
    mkdirSync(dir, { recursive: true });
    this.path = join(dir, name);
    this.fd = openSync(this.path, 'wx');
    this.writeEvent(new ProtoWriter().double(1, wallTime).string(3, FILE_VERSION));
    this.flush();
  }

  private fail(field: string, detail: string): never {
    throw new FormatError('tfevents', detail, { file: this.path, field });
  }

  private writeEvent(event: ProtoWriter): void {
    if (this.fd === undefined) this.fail('writer', 'is closed');
    const rec = frameRecord(event.finish());
    this.pending.push(rec);
    this.pendingBytes += rec.length;
    if (this.pendingBytes >= AUTO_WRITE_BYTES) this.writePending();
  }

  private checkStep(step: number): void {
    if (!Number.isSafeInteger(step)) this.fail('step', `must be a safe integer, got ${step}`);
  }

  /**
   * One Event holding a simple_value per tag. Values are stored as float32 (the proto
   * field is `float`); NaN and ±Infinity are kept as such.
   */
  addScalars(step: number, scalars: Record<string, number>, wallTime: number = Date.now() / 1000): void {
    this.checkStep(step);
    const summary = new ProtoWriter();
    for (const [tag, value] of Object.entries(scalars)) {
      if (tag === '') this.fail('tag', 'must not be empty');
      if (typeof value !== 'number') this.fail(`scalars["${tag}"]`, `must be a number, got ${typeof value}`);
      summary.message(1, new ProtoWriter().string(1, tag).float(2, value));
    }
    this.writeEvent(new ProtoWriter().double(1, wallTime).int64(2, step).message(5, summary));
  }

  /**
   * A SessionLog event. START at the resume step is what makes TensorBoard drop the
   * superseded points after a resume (see the file comment).
   */
  addSessionLog(step: number, status: SessionStatus, options: SessionLogOptions = {}): void {
    this.checkStep(step);
    const code = SESSION_STATUS[status];
    if (code === undefined) this.fail('status', `unknown session status ${JSON.stringify(status)}`);
    const log = new ProtoWriter().enum(1, code);
    if (options.checkpointPath !== undefined) log.string(2, options.checkpointPath);
    if (options.msg !== undefined) log.string(3, options.msg);
    this.writeEvent(new ProtoWriter().double(1, options.wallTime ?? Date.now() / 1000).int64(2, step).message(6, log));
  }

  private writePending(): void {
    const fd = this.fd!;
    for (const rec of this.pending) {
      for (let off = 0; off < rec.length; ) off += writeSync(fd, rec, off, rec.length - off);
    }
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Writes every pending record and fsyncs: after flush() returns the events are on disk. */
  flush(): void {
    if (this.fd === undefined) this.fail('writer', 'is closed');
    this.writePending();
    fsyncSync(this.fd);
  }

  /** Flushes and closes. Further calls throw; a second close() is a no-op. */
  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    closeSync(this.fd);
    this.fd = undefined;
  }
}
