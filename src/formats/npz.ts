// .npz = a zip archive of .npy files, one per array (np.savez stores, np.savez_compressed
// deflates). Keys are the entry names without the ".npy" suffix, as numpy's np.load gives them.
// Bounds: the file (read whole) plus the members' declared sizes, which the central
// directory, each npy header and the deflate bound all agree on before anything is inflated:
// at most 1× the file for stored members, 1032× the compressed bytes for deflated ones.
import { FormatError } from './errors.js';
import { readWholeFile, writeChunksSynced } from './fileio.js';
import { NPY_PREAMBLE, decodeNpy, encodeNpy, npyDataOffset, readNpyHeader } from './npy.js';
import type { Tensor } from './tensor.js';
import { listZip, writeZip, zipMemberData, zipMemberPrefix } from './zip.js';

export interface NpzDecodeOptions {
  /** File name to put in error messages. */
  source?: string;
}

export interface NpzEncodeOptions {
  /** Deflate the entries (like np.savez_compressed). Default false (like np.savez). */
  compress?: boolean;
  /** Always write zip64 records, as numpy itself does. Default false. */
  forceZip64?: boolean;
}

function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Decodes an .npz archive into name -> tensor; every entry must be a .npy file. Before any
 * member's data is inflated, the whole central directory is checked (listZip) and each
 * member's npy header is read from the first inflated bytes and must account for exactly the
 * directory's size: a header claiming more or less than the directory is refused, naming both.
 */
export function decodeNpz(bytes: Uint8Array, options: NpzDecodeOptions = {}): Record<string, Tensor> {
  const file = options.source;
  const zipOptions = { source: file };
  const members = listZip(bytes, zipOptions);
  for (const m of members) {
    const field = `entry "${m.name}"`;
    if (!m.name.endsWith('.npy')) throw new FormatError('npz', 'is not a .npy entry', { file, field });
    // npy errors then read "npy file a.npz:weights.npy, shape: ...".
    // A stored member is a view of the file: decodeNpy checks it against its real bytes after
    // the CRC. A deflated one is checked here, on its first bytes only.
    if (m.method === 0) continue;
    const source = `${file ?? '<npz>'}:${m.name}`;
    const dataOffset = npyDataOffset(zipMemberPrefix(bytes, m, NPY_PREAMBLE, zipOptions), m.size, source);
    const h = readNpyHeader(zipMemberPrefix(bytes, m, dataOffset, zipOptions), m.size, { source });
    if (h.dataOffset + h.dataBytes !== m.size) {
      throw new FormatError('npz', `npy header says shape (${h.shape.join(', ')}) of ${h.descr}: ${h.dataOffset} header + ${h.dataBytes} data bytes, `
        + `but the central directory says the member is ${m.size} bytes; refused before inflating`, { file, field });
    }
  }
  const out: Record<string, Tensor> = {};
  for (const m of members) {
    const data = zipMemberData(bytes, m, zipOptions);
    setOwn(out, m.name.slice(0, -'.npy'.length), decodeNpy(data, { source: `${file ?? '<npz>'}:${m.name}` }));
  }
  return out;
}

/** Encodes name -> tensor as an .npz archive (entries "<name>.npy", in the given order). */
export function encodeNpz(arrays: Record<string, Tensor>, options: NpzEncodeOptions = {}): Uint8Array {
  const entries = Object.entries(arrays).map(([name, t]) => {
    try {
      return { name: `${name}.npy`, data: encodeNpy(t) };
    } catch (e) {
      if (e instanceof FormatError) throw new FormatError('npz', e.message, { field: `arrays["${name}"]`, cause: e });
      throw e;
    }
  });
  return writeZip(entries, options);
}

export async function readNpzFile(path: string): Promise<Record<string, Tensor>> {
  return decodeNpz(await readWholeFile(path), { source: path });
}

/** Writes an .npz file, fsynced before it returns. */
export async function writeNpzFile(path: string, arrays: Record<string, Tensor>, options: NpzEncodeOptions = {}): Promise<void> {
  await writeChunksSynced(path, [encodeNpz(arrays, options)]);
}
