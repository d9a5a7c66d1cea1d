// Per-tensor conflict flags of every logged step, compactly in the run directory, so the
// report can show which tensors conflict and when.
//
// Format (version 1):
//   conflicts.json  {"format": "craftgrad-conflicts", "version": 1, "tensors": [names],
//                    "num_tensors": k, "record_bytes": 8 + ceil(k/8), "step": "int64le",
//                    "flags": "bits-lsb-first", "data": "conflicts.bin"}
//   conflicts.bin   fixed-size records, one per logged step, in step order:
//                    int64 little-endian step, then ceil(k/8) bytes of flags where tensor i
//                    is bit (i % 8) of byte (i >> 3), 1 = conflicted (surgery's `conflicts`).
// A 484-tensor model costs 69 bytes a step. The header is written once (atomically: temp
// file, fsync, rename); records are appended with one write each, so a kill loses at most
// the record being written, and the reader drops a torn last record.
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { argRangeError, argTypeError, describeValue } from '../errors.js';
import { checkInteger } from '../validate.js';
import { replaceFileAtomic } from './fsio.js';

export const CONFLICT_LOG_FORMAT = 'craftgrad-conflicts';
export const CONFLICT_LOG_VERSION = 1;
export const CONFLICT_LOG_HEADER = 'conflicts.json';
export const CONFLICT_LOG_DATA = 'conflicts.bin';
const STEP_BYTES = 8;

/** The contents of conflicts.json. */
export interface ConflictLogHeader {
  format: typeof CONFLICT_LOG_FORMAT;
  version: number;
  tensors: string[];
  num_tensors: number;
  record_bytes: number;
  step: 'int64le';
  flags: 'bits-lsb-first';
  data: typeof CONFLICT_LOG_DATA;
}

/** A conflict log as read back: `flags[s * names.length + t]` is 1 when tensor t conflicted at steps[s]. */
export interface ConflictLog {
  names: string[];
  steps: number[];
  flags: Uint8Array;
  /** Bytes at the end of conflicts.bin that do not make a whole record (a write cut short); 0 normally. */
  droppedBytes: number;
}

export function conflictRecordBytes(numTensors: number): number {
  return STEP_BYTES + Math.ceil(numTensors / 8);
}

function makeHeader(names: string[]): ConflictLogHeader {
  return {
    format: CONFLICT_LOG_FORMAT, version: CONFLICT_LOG_VERSION, tensors: names, num_tensors: names.length,
    record_bytes: conflictRecordBytes(names.length), step: 'int64le', flags: 'bits-lsb-first', data: CONFLICT_LOG_DATA,
  };
}

/** Parses and checks conflicts.json; errors say what is wrong with it. */
export function parseConflictLogHeader(text: string, path = CONFLICT_LOG_HEADER): ConflictLogHeader {
  let h: Partial<ConflictLogHeader>;
  try {
    h = JSON.parse(text) as Partial<ConflictLogHeader>;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (h === null || typeof h !== 'object') throw new Error(`${path}: not a JSON object`);
  if (h.format !== CONFLICT_LOG_FORMAT) throw new Error(`${path}: format is ${JSON.stringify(h.format)}, expected "${CONFLICT_LOG_FORMAT}"`);
  if (h.version !== CONFLICT_LOG_VERSION) throw new Error(`${path}: version ${String(h.version)} is not supported (this build reads version ${CONFLICT_LOG_VERSION})`);
  if (!Array.isArray(h.tensors) || !h.tensors.every((n) => typeof n === 'string')) throw new Error(`${path}: tensors must be an array of names`);
  if (h.num_tensors !== h.tensors.length) throw new Error(`${path}: num_tensors ${String(h.num_tensors)} does not match ${h.tensors.length} names`);
  if (h.record_bytes !== conflictRecordBytes(h.tensors.length)) throw new Error(`${path}: record_bytes ${String(h.record_bytes)}, expected ${conflictRecordBytes(h.tensors.length)}`);
  return h as ConflictLogHeader;
}

export interface ConflictLogWriterOptions {
  /** Start a new log even when a compatible one exists (a fresh run). Default false: append (resume). */
  replace?: boolean;
}

/**
 * Appends one record per logged step. Constructed on a directory holding a log for the
 * same tensors, it appends to it (a resume: call truncateAfter(checkpointStep) first);
 * a log for other tensors is refused unless `replace` is set.
 */
export class ConflictLogWriter {
  readonly names: readonly string[];
  readonly recordBytes: number;
  private fd: number | undefined;
  private records: number;
  private lastStep = -1;
  private readonly record: Uint8Array;
  private readonly view: DataView;

  constructor(readonly runDir: string, tensorNames: readonly string[], options: ConflictLogWriterOptions = {}) {
    if (!Array.isArray(tensorNames) || !tensorNames.every((n) => typeof n === 'string')) {
      throw argTypeError(`tensorNames must be an array of strings, got ${describeValue(tensorNames)}`);
    }
    this.names = [...tensorNames];
    this.recordBytes = conflictRecordBytes(this.names.length);
    this.record = new Uint8Array(this.recordBytes);
    this.view = new DataView(this.record.buffer);
    const headerPath = join(runDir, CONFLICT_LOG_HEADER);
    const dataPath = join(runDir, CONFLICT_LOG_DATA);
    let append = false;
    if (!options.replace && existsSync(headerPath)) {
      const old = parseConflictLogHeader(readFileSync(headerPath, 'utf8'), headerPath);
      const i = old.tensors.findIndex((n, j) => n !== this.names[j]);
      if (old.tensors.length !== this.names.length || i >= 0) {
        throw argRangeError(`${headerPath} logs other tensors (${old.tensors.length} vs ${this.names.length}` +
          (i >= 0 ? `; tensor ${i} is '${old.tensors[i]}', not '${this.names[i]}'` : '') + '); pass { replace: true } to start a new log');
      }
      append = existsSync(dataPath);
    }
    if (!append) {
      // Data first, header last: a header always describes an existing (possibly empty) data file.
      closeSync(openSync(dataPath, 'w'));
      replaceFileAtomic(headerPath, JSON.stringify(makeHeader([...this.names]), null, 1) + '\n');
    }
    this.fd = openSync(dataPath, 'r+');
    const size = fstatSync(this.fd).size;
    this.records = Math.floor(size / this.recordBytes);
    if (size !== this.records * this.recordBytes) ftruncateSync(this.fd, this.records * this.recordBytes); // torn record
    if (this.records > 0) this.lastStep = this.readStep(this.records - 1);
  }

  /** Records in the log. */
  get length(): number {
    return this.records;
  }

  private readStep(index: number): number {
    const b = new Uint8Array(STEP_BYTES);
    readSyncAt(this.openFd(), b, index * this.recordBytes);
    return Number(new DataView(b.buffer).getBigInt64(0, true));
  }

  private openFd(): number {
    if (this.fd === undefined) throw new Error('ConflictLogWriter is closed');
    return this.fd;
  }

  /** Appends the flags of `step` (one byte per tensor, nonzero = conflicted). Steps must increase. */
  append(step: number, flags: Uint8Array): void {
    const fd = this.openFd();
    checkInteger(step, 'step', 0);
    if (step <= this.lastStep) throw argRangeError(`step ${step} is not after the last logged step ${this.lastStep}`);
    if (!(flags instanceof Uint8Array)) throw argTypeError(`flags must be a Uint8Array, got ${describeValue(flags)}`);
    if (flags.length !== this.names.length) throw argRangeError(`flags has ${flags.length} entries, expected ${this.names.length} (one per tensor)`);
    this.record.fill(0);
    this.view.setBigInt64(0, BigInt(step), true);
    for (let i = 0; i < flags.length; ++i) if (flags[i]) this.record[STEP_BYTES + (i >> 3)]! |= 1 << (i & 7);
    // One positional write per record: the record reaches the OS whole or not at all as
    // far as a killed process is concerned (a torn tail is dropped on the next open).
    writeSync(fd, this.record, 0, this.recordBytes, this.records * this.recordBytes);
    this.records++;
    this.lastStep = step;
  }

  /** Drops the records of steps after `step` (resuming from a checkpoint at `step`). */
  truncateAfter(step: number): void {
    const fd = this.openFd();
    let keep = this.records;
    while (keep > 0 && this.readStep(keep - 1) > step) keep--; // records are in step order
    ftruncateSync(fd, keep * this.recordBytes);
    fsyncSync(fd);
    this.records = keep;
    this.lastStep = keep > 0 ? this.readStep(keep - 1) : -1;
  }

  /** Makes everything appended so far durable (call before a checkpoint). */
  flush(): void {
    fsyncSync(this.openFd());
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

function readSyncAt(fd: number, buf: Uint8Array, position: number): void {
  // fs.readSync may return fewer bytes than asked; loop until the buffer is full.
  let done = 0;
  while (done < buf.length) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new Error(`conflict log: unexpected end of file at byte ${position + done}`);
    done += n;
  }
}

/**
 * Reads a run directory's conflict log; null when it has none (a baseline run, or a run
 * from before the log existed). A torn last record is dropped and counted in droppedBytes;
 * a malformed header throws an Error saying what is wrong.
 */
export function readConflictLog(runDir: string): ConflictLog | null {
  const headerPath = join(runDir, CONFLICT_LOG_HEADER);
  if (!existsSync(headerPath)) return null;
  const header = parseConflictLogHeader(readFileSync(headerPath, 'utf8'), headerPath);
  const dataPath = join(runDir, CONFLICT_LOG_DATA);
  const data = existsSync(dataPath) ? readFileSync(dataPath) : new Uint8Array(0);
  const k = header.num_tensors, rb = header.record_bytes;
  const n = Math.floor(data.length / rb);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const steps = new Array<number>(n);
  const flags = new Uint8Array(n * k);
  for (let s = 0; s < n; ++s) {
    const base = s * rb;
    steps[s] = Number(view.getBigInt64(base, true));
    for (let t = 0; t < k; ++t) flags[s * k + t] = (data[base + STEP_BYTES + (t >> 3)]! >> (t & 7)) & 1;
  }
  return { names: header.tensors, steps, flags, droppedBytes: data.length - n * rb };
}
