// One error class for every reader/writer in src/formats, so callers can catch
// malformed files with a single `instanceof` and still tell which file and which
// field was at fault (checkpoint loading reports both to the user).

export interface FormatErrorOptions {
  /** Path of the file being read or written, when there is one. */
  file?: string | undefined;
  /** The header field, zip entry or record at fault, e.g. `tensors["w"].data_offsets`. */
  field?: string | undefined;
  cause?: unknown;
}

export class FormatError extends Error {
  /** 'safetensors' | 'npy' | 'npz' | 'zip' | 'tfevents' | 'torch-pt' */
  readonly format: string;
  readonly file: string | undefined;
  readonly field: string | undefined;

  constructor(format: string, detail: string, options: FormatErrorOptions = {}) {
    // The message carries file and field too: most users only ever see the message.
    const where = options.file !== undefined ? ` file ${options.file}` : '';
    const field = options.field !== undefined ? `, ${options.field}` : '';
    // One line, whatever the detail or field quotes: JSON.parse's messages excerpt the input,
    // and a zip entry's name comes from the file, line breaks included.
    const line = `${format}${where}${field}: ${detail}`.replace(/\s*[\r\n]+\s*/g, ' ');
    super(line, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'FormatError';
    this.format = format;
    this.file = options.file;
    this.field = options.field;
  }
}
