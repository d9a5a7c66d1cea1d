// A hand-written protobuf encoder for the three tiny messages of a TensorBoard event
// file (Event, Summary.Value, SessionLog). A protobuf runtime plus generated code
// would be a dependency and a build step for ~40 lines of wire format: varints,
// length-delimited fields, fixed32 and fixed64. Proto3 semantics: the caller decides
// which fields to emit; nothing here knows the schemas.

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

export class ProtoWriter {
  private buf = new Uint8Array(64);
  private len = 0;
  private readonly dv8 = new DataView(new ArrayBuffer(8));

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + extra));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  private raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.len);
    this.len += bytes.length;
  }

  /** Unsigned varint; negative int64 values go as their 64-bit two's complement (10 bytes). */
  private varint(value: bigint | number): void {
    let v = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  int64(field: number, value: bigint | number): this {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
    return this;
  }

  /** Enums are varints on the wire. */
  enum(field: number, value: number): this {
    return this.int64(field, value);
  }

  double(field: number, value: number): this {
    this.tag(field, WIRE_FIXED64);
    this.dv8.setFloat64(0, value, true);
    this.raw(new Uint8Array(this.dv8.buffer, 0, 8));
    return this;
  }

  /** `float` fields are fixed32 IEEE single: the value is rounded to float32. */
  float(field: number, value: number): this {
    this.tag(field, WIRE_FIXED32);
    this.dv8.setFloat32(0, value, true);
    this.raw(new Uint8Array(this.dv8.buffer, 0, 4));
    return this;
  }

  bytes(field: number, value: Uint8Array): this {
    this.tag(field, WIRE_LEN);
    this.varint(value.length);
    this.raw(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  /** An embedded message (length-delimited). */
  message(field: number, inner: ProtoWriter): this {
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}
