// An event-file reader written straight from the spec (TFRecord framing + the Event
// proto subset described in tfevents.ts), sharing no code with the writer beyond the
// CRC32C primitive, so tests can use it as an independent check of what we write.
// Bounds: 1× the file (read whole) + the decoded events; every length is checked against the
// bytes left before it is used.
import { readFileSync } from 'node:fs';
import { crc32c } from './crc.js';
import { FormatError } from './errors.js';
import type { SessionStatus } from './tfevents.js';

export interface TfSessionLog {
  status: SessionStatus;
  checkpointPath?: string;
  msg?: string;
}

export interface TfEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  /** tag -> simple_value of the event's summary values that carry one. */
  scalars?: Record<string, number>;
  sessionLog?: TfSessionLog;
}

const STATUS_NAMES: readonly SessionStatus[] = ['STATUS_UNSPECIFIED', 'START', 'STOP', 'CHECKPOINT'];

class Decoder {
  pos = 0;
  private readonly dv: DataView;
  constructor(private readonly b: Uint8Array, private readonly fail: (detail: string) => never) {
    this.dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  get done(): boolean {
    return this.pos >= this.b.length;
  }
  varint(): bigint {
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.b.length) this.fail('truncated varint');
      const byte = this.b[this.pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return BigInt.asUintN(64, result);
    }
    return this.fail('varint longer than 10 bytes');
  }
  need(n: number): void {
    if (this.pos + n > this.b.length) this.fail(`field needs ${n} bytes, ${this.b.length - this.pos} left`);
  }
  fixed64(): number {
    this.need(8);
    const v = this.dv.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  fixed32(): number {
    this.need(4);
    const v = this.dv.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  lengthDelimited(): Uint8Array {
    const n = Number(this.varint());
    this.need(n);
    const v = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) { this.need(8); this.pos += 8; }
    else if (wire === 2) this.lengthDelimited();
    else if (wire === 5) { this.need(4); this.pos += 4; }
    else this.fail(`unsupported wire type ${wire}`);
  }
  /** Calls `on(field, wire)` per field; `on` returns false to have the field skipped. */
  fields(on: (field: number, wire: number) => boolean): void {
    while (!this.done) {
      const key = Number(this.varint());
      const field = key >>> 3;
      const wire = key & 7;
      if (!on(field, wire)) this.skip(wire);
    }
  }
}

const utf8 = new TextDecoder('utf-8');

function decodeEvent(data: Uint8Array, fail: (detail: string) => never): TfEvent {
  const ev: TfEvent = { wallTime: 0, step: 0 };
  const d = new Decoder(data, fail);
  d.fields((field, wire) => {
    if (field === 1 && wire === 1) ev.wallTime = d.fixed64();
    else if (field === 2 && wire === 0) {
      const step = BigInt.asIntN(64, d.varint());
      if (step > BigInt(Number.MAX_SAFE_INTEGER) || step < BigInt(Number.MIN_SAFE_INTEGER)) fail(`step ${step} is not a safe integer`);
      ev.step = Number(step);
    } else if (field === 3 && wire === 2) ev.fileVersion = utf8.decode(d.lengthDelimited());
    else if (field === 5 && wire === 2) {
      const scalars: Record<string, number> = ev.scalars ?? {};
      const s = new Decoder(d.lengthDelimited(), fail);
      s.fields((f, w) => {
        if (f !== 1 || w !== 2) return false;
        const v = new Decoder(s.lengthDelimited(), fail);
        let tag = '';
        let value: number | undefined;
        v.fields((vf, vw) => {
          if (vf === 1 && vw === 2) tag = utf8.decode(v.lengthDelimited());
          else if (vf === 2 && vw === 5) value = v.fixed32();
          else return false;
          return true;
        });
        if (value !== undefined) Object.defineProperty(scalars, tag, { value, enumerable: true, writable: true, configurable: true });
        return true;
      });
      ev.scalars = scalars;
    } else if (field === 6 && wire === 2) {
      const log: TfSessionLog = { status: 'STATUS_UNSPECIFIED' };
      const s = new Decoder(d.lengthDelimited(), fail);
      s.fields((f, w) => {
        if (f === 1 && w === 0) {
          const code = Number(s.varint());
          const name = STATUS_NAMES[code];
          if (name === undefined) fail(`unknown SessionLog status ${code}`);
          log.status = name!;
        } else if (f === 2 && w === 2) log.checkpointPath = utf8.decode(s.lengthDelimited());
        else if (f === 3 && w === 2) log.msg = utf8.decode(s.lengthDelimited());
        else return false;
        return true;
      });
      ev.sessionLog = log;
    } else return false;
    return true;
  });
  return ev;
}

function masked(crc: number): number {
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/**
 * Parses every record of an event file (bytes, or a path to read), checking both
 * CRCs of each; throws FormatError naming the record index and byte offset on any
 * mismatch, truncation or malformed protobuf.
 */
export function readTfEvents(input: Uint8Array | string): TfEvent[] {
  const file = typeof input === 'string' ? input : undefined;
  const bytes = typeof input === 'string' ? new Uint8Array(readFileSync(input)) : input;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const events: TfEvent[] = [];
  let off = 0;
  for (let index = 0; off < bytes.length; index++) {
    const fail = (detail: string): never => {
      throw new FormatError('tfevents', detail, { file, field: `record ${index} at byte ${off}` });
    };
    if (off + 12 > bytes.length) fail(`truncated record header (${bytes.length - off} bytes left)`);
    const lengthCrc = crc32c(bytes.subarray(off, off + 8));
    if (masked(lengthCrc) !== dv.getUint32(off + 8, true)) fail('length CRC32C mismatch');
    const len64 = dv.getBigUint64(off, true);
    if (len64 > BigInt(bytes.length - off - 16)) fail(`length ${len64} runs past the end of the file`);
    const len = Number(len64);
    const data = bytes.subarray(off + 12, off + 12 + len);
    if (masked(crc32c(data)) !== dv.getUint32(off + 12 + len, true)) fail('data CRC32C mismatch');
    events.push(decodeEvent(data, (detail) => fail(`bad Event protobuf: ${detail}`)));
    off += 16 + len;
  }
  return events;
}
