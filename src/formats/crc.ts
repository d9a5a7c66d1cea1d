// CRC32 (zip, polynomial 0xEDB88320) and CRC32C (Castagnoli, 0x82F63B78; TFRecord framing).
//
// Why @node-rs/crc32: one well-kept package (napi-rs project) with both checksums,
// SIMD-fast for multi-GB npz entries, and its prebuilt binaries ship as ordinary npm
// optional packages (no install script, no download outside the registry), so
// `npm ci --ignore-scripts` works offline-from-registry on Node 20 linux-x64.
// Node's own zlib.crc32 exists only from Node 22 and has no CRC32C.
// Where no prebuilt binary fits the platform, the table code below takes over, so the
// formats layer never depends on native code being present (slower, same results).
import { createRequire } from 'node:module';

type CrcFn = (input: Uint8Array, initial?: number) => number;

function makeTableCrc(poly: number): CrcFn {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ poly : c >>> 1;
    table[n] = c >>> 0;
  }
  return (input, initial = 0) => {
    let crc = ~initial >>> 0;
    for (let i = 0; i < input.length; i++) crc = table[(crc ^ input[i]!) & 0xff]! ^ (crc >>> 8);
    return ~crc >>> 0;
  };
}

/** Pure-JS fallbacks; exported so tests can cross-check them against the package. */
export const crc32Table: CrcFn = makeTableCrc(0xedb88320);
export const crc32cTable: CrcFn = makeTableCrc(0x82f63b78);

interface NodeRsCrc {
  crc32(input: Uint8Array, initialState?: number): number;
  crc32c(input: Uint8Array, initialState?: number): number;
}

function loadNative(): NodeRsCrc | undefined {
  try {
    return createRequire(import.meta.url)('@node-rs/crc32') as NodeRsCrc;
  } catch {
    return undefined;
  }
}

const native = loadNative();

/** Which implementation is in use ('@node-rs/crc32' or 'table'). */
export const crcImplementation: string = native ? '@node-rs/crc32' : 'table';

/** CRC-32 (ISO-HDLC, as in zip and gzip). `initial` continues a previous result. */
export function crc32(data: Uint8Array, initial = 0): number {
  return native ? native.crc32(data, initial) >>> 0 : crc32Table(data, initial);
}

/** CRC-32C (Castagnoli). `initial` continues a previous result. */
export function crc32c(data: Uint8Array, initial = 0): number {
  return native ? native.crc32c(data, initial) >>> 0 : crc32cTable(data, initial);
}
