// TFRecord files, read as a stream: one record at a time, never the whole file.
//
// The framing (tensorflow/tensorflow tensorflow/python/lib/io/python_io.py, "TFRecords Format
// Details"; tensorflow/core/lib/io/record_writer.cc RecordWriter::WriteRecord):
//   uint64 length | uint32 masked_crc32c(length bytes) | byte data[length] | uint32 masked_crc32c(data)
// little-endian, masked_crc = ((crc >> 15) | (crc << 17)) + 0xa282ead8. The same framing as a
// TensorBoard event file, so the mask and the frame come from src/formats/tfevents.ts and the
// checksum from src/formats/crc.ts. Only uncompressed files: TFDS writes its shards that way
// (tensorflow_datasets/core/file_adapters.py TfRecordFileAdapter, no compression option).
//
// Reading: 12 header bytes are read and the length CRC is checked before the length is
// believed; a length that claims more than the file's remaining bytes (or more than
// `maxRecordBytes`) is refused before anything is allocated; then exactly `length + 4` bytes
// are read and the data CRC is checked before the record is handed out. Memory is one record.
import { open, type FileHandle } from 'node:fs/promises';
import { crc32c } from '../../formats/crc.js';
import { FormatError } from '../../formats/errors.js';
import { frameRecord, maskCrc } from '../../formats/tfevents.js';

export const TFRECORD_HEADER_BYTES = 12;
export const TFRECORD_FOOTER_BYTES = 4;
/** Default ceiling on one record (an RLDS record is one episode: tens of MB for LIBERO's longest). */
export const TFRECORD_MAX_RECORD_BYTES = 1 << 30;

export interface TfRecordReadOptions {
  /** A record longer than this is refused before it is allocated (default 1 GiB, at most 2 GiB - 1). */
  maxRecordBytes?: number | undefined;
  /**
   * Called before each read from the file with its byte position and length (tests use it to
   * check that reads are bounded by one record).
   */
  onRead?: ((position: number, length: number) => void) | undefined;
}

export interface TfRecordEntry {
  /** 0-based index of the record in the file. */
  index: number;
  /** Byte offset of the record's header in the file. */
  offset: number;
  /** The record's payload, in a buffer of its own (never a view of a larger read). */
  data: Uint8Array;
}

/** A framing error, with the record's index and offset kept apart so callers can re-word it. */
export class TfRecordFormatError extends FormatError {
  constructor(file: string, readonly record: number, readonly offset: number, readonly detail: string) {
    super('tfrecord', detail, { file, field: `record ${record} at byte ${offset}` });
  }
}

function tfrecordError(file: string, index: number, offset: number, detail: string): TfRecordFormatError {
  return new TfRecordFormatError(file, index, offset, detail);
}

/** Reads exactly `length` bytes at `position` into `out`; returns how many arrived (less only at end of file). */
async function readAt(fh: FileHandle, out: Uint8Array, position: number, onRead: TfRecordReadOptions['onRead']): Promise<number> {
  onRead?.(position, out.length);
  let got = 0;
  while (got < out.length) {
    const { bytesRead } = await fh.read(out, got, out.length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/**
 * The records of the TFRecord file at `path`, in file order, each checked against both of
 * its CRCs. Throws FormatError('tfrecord') naming the file, the record index and its byte
 * offset on a truncated header or record, a CRC mismatch, or a length beyond the file's end
 * or `maxRecordBytes`. The file is closed when the iteration ends, completes or throws.
 */
export async function* readTfRecords(path: string, options: TfRecordReadOptions = {}): AsyncGenerator<TfRecordEntry, void, undefined> {
  const maxRecordBytes = Math.min(options.maxRecordBytes ?? TFRECORD_MAX_RECORD_BYTES, 0x7fffffff);
  const onRead = options.onRead;
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const header = new Uint8Array(TFRECORD_HEADER_BYTES);
    const hv = new DataView(header.buffer);
    let offset = 0;
    for (let index = 0; offset < size; index++) {
      const left = size - offset;
      if (left < TFRECORD_HEADER_BYTES) throw tfrecordError(path, index, offset, `truncated record header (${left} of ${TFRECORD_HEADER_BYTES} bytes left)`);
      if ((await readAt(fh, header, offset, onRead)) !== TFRECORD_HEADER_BYTES) throw tfrecordError(path, index, offset, 'truncated record header (the file shrank while reading)');
      if (maskCrc(crc32c(header.subarray(0, 8))) !== hv.getUint32(8, true)) throw tfrecordError(path, index, offset, 'length CRC32C mismatch (not a TFRecord file, or a corrupt header)');
      const length64 = hv.getBigUint64(0, true);
      const room = left - TFRECORD_HEADER_BYTES - TFRECORD_FOOTER_BYTES;
      if (length64 > BigInt(Math.max(room, 0))) {
        throw tfrecordError(path, index, offset, `truncated record: its length ${length64} runs past the end of the file (${Math.max(room, 0)} data bytes left)`);
      }
      const length = Number(length64);
      if (length > maxRecordBytes) throw tfrecordError(path, index, offset, `record length ${length} is over the limit of ${maxRecordBytes} bytes`);
      const body = new Uint8Array(length + TFRECORD_FOOTER_BYTES);
      if ((await readAt(fh, body, offset + TFRECORD_HEADER_BYTES, onRead)) !== body.length) throw tfrecordError(path, index, offset, 'truncated record (the file shrank while reading)');
      const data = body.subarray(0, length);
      const stored = new DataView(body.buffer, length, TFRECORD_FOOTER_BYTES).getUint32(0, true);
      if (maskCrc(crc32c(data)) !== stored) throw tfrecordError(path, index, offset, 'data CRC32C mismatch (corrupt record)');
      yield { index, offset, data };
      offset += TFRECORD_HEADER_BYTES + length + TFRECORD_FOOTER_BYTES;
    }
  } finally {
    await fh.close();
  }
}

/**
 * The one record at byte `offset` of `path` (a place readTfRecords reported), both CRCs
 * checked: random access to an episode without reading the shard before it.
 */
export async function readTfRecordAt(path: string, offset: number, index = 0, options: TfRecordReadOptions = {}): Promise<Uint8Array> {
  const maxRecordBytes = Math.min(options.maxRecordBytes ?? TFRECORD_MAX_RECORD_BYTES, 0x7fffffff);
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const header = new Uint8Array(TFRECORD_HEADER_BYTES);
    const hv = new DataView(header.buffer);
    if (!Number.isSafeInteger(offset) || offset < 0 || size - offset < TFRECORD_HEADER_BYTES) throw tfrecordError(path, index, offset, 'no record header at this offset');
    if ((await readAt(fh, header, offset, options.onRead)) !== TFRECORD_HEADER_BYTES) throw tfrecordError(path, index, offset, 'truncated record header');
    if (maskCrc(crc32c(header.subarray(0, 8))) !== hv.getUint32(8, true)) throw tfrecordError(path, index, offset, 'length CRC32C mismatch (the file changed since it was indexed, or a corrupt header)');
    const length64 = hv.getBigUint64(0, true);
    const room = size - offset - TFRECORD_HEADER_BYTES - TFRECORD_FOOTER_BYTES;
    if (length64 > BigInt(Math.max(room, 0))) throw tfrecordError(path, index, offset, `truncated record: its length ${length64} runs past the end of the file`);
    const length = Number(length64);
    if (length > maxRecordBytes) throw tfrecordError(path, index, offset, `record length ${length} is over the limit of ${maxRecordBytes} bytes`);
    const body = new Uint8Array(length + TFRECORD_FOOTER_BYTES);
    if ((await readAt(fh, body, offset + TFRECORD_HEADER_BYTES, options.onRead)) !== body.length) throw tfrecordError(path, index, offset, 'truncated record');
    const data = body.subarray(0, length);
    if (maskCrc(crc32c(data)) !== new DataView(body.buffer, length, TFRECORD_FOOTER_BYTES).getUint32(0, true)) {
      throw tfrecordError(path, index, offset, 'data CRC32C mismatch (corrupt record)');
    }
    return data;
  } finally {
    await fh.close();
  }
}

/** One record framed as a TFRecord (length, masked CRC32C of the length, data, masked CRC32C of the data). */
export function encodeTfRecord(data: Uint8Array): Uint8Array {
  return frameRecord(data);
}

/**
 * Writes records one by one to a new file (created or truncated). `close()` fsyncs: a shard
 * is complete when the promise resolves. For tests and tools; the reader never needs it.
 */
export class TfRecordWriter {
  private constructor(readonly path: string, private fh: FileHandle | undefined, private records = 0) {}

  static async open(path: string): Promise<TfRecordWriter> {
    return new TfRecordWriter(path, await open(path, 'w'));
  }

  /** Records written so far. */
  get count(): number {
    return this.records;
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.fh === undefined) throw new Error(`TfRecordWriter: ${this.path} is closed`);
    const framed = frameRecord(data);
    for (let off = 0; off < framed.length; ) {
      const { bytesWritten } = await this.fh.write(framed, off, framed.length - off);
      off += bytesWritten;
    }
    this.records += 1;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    if (fh === undefined) return;
    this.fh = undefined;
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}

/** Writes `records` to `path` as one TFRecord file. */
export async function writeTfRecordFile(path: string, records: Iterable<Uint8Array>): Promise<void> {
  const w = await TfRecordWriter.open(path);
  try {
    for (const r of records) await w.write(r);
  } finally {
    await w.close();
  }
}
