// .npz = a zip archive of .npy files, one per array (np.savez stores, np.savez_compressed
// deflates). Keys are the entry names without the ".npy" suffix, as numpy's np.load gives them.
import { FormatError } from './errors.js';
import { readWholeFile, writeChunksSynced } from './fileio.js';
import { decodeNpy, encodeNpy } from './npy.js';
import type { Tensor } from './tensor.js';
import { readZip, writeZip } from './zip.js';

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

/** Decodes an .npz archive into name -> tensor; every entry must be a .npy file. */
export function decodeNpz(bytes: Uint8Array, options: NpzDecodeOptions = {}): Record<string, Tensor> {
  const file = options.source;
  const out: Record<string, Tensor> = {};
  for (const entry of readZip(bytes, { source: file })) {
    if (!entry.name.endsWith('.npy')) {
      throw new FormatError('npz', 'is not a .npy entry', { file, field: `entry "${entry.name}"` });
    }
    const key = entry.name.slice(0, -'.npy'.length);
    // npy errors then read "npy file a.npz:weights.npy, shape: ...".
    setOwn(out, key, decodeNpy(entry.data, { source: `${file ?? '<npz>'}:${entry.name}` }));
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
