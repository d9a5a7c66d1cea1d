// Usage errors: one clear line on stderr and exit code 2, never a stack trace.

export class UsageError extends Error {
  override name = 'UsageError';
  /**
   * Whether "Run craftgrad --help for usage." follows the message: only for a command line
   * that is wrong as such (unknown or misspelt options, bad values), not for a bad input
   * file or a run that cannot be resumed, where --help has nothing to add.
   */
  readonly help: boolean;

  constructor(message: string, options: { help?: boolean } = {}) {
    super(message);
    this.help = options.help ?? true;
  }
}

/**
 * Edit distance counting a swap of two neighbours as one edit (optimal string alignment),
 * for "did you mean" suggestions: 'trian' is one edit from 'train'. Tiny inputs only.
 */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; ++i) {
    for (let j = 1; j <= b.length; ++j) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate within a small edit distance, if any. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined, bestD = Infinity;
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  return bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/**
 * Rewrites yargs' "Unknown argument(s): x, y" with a suggestion for each word: a command
 * for a bare word, an option for a flag. yargs names an unknown flag without its dashes
 * ('--jsn' is "jsn"), so `argv`, the command line, tells which words were typed bare.
 * A bare first word is where a command is named: it is only ever matched against the
 * commands (`craftgrad dat` is not '--data'), and without a close one the commands are
 * listed.
 */
export function explainUnknown(message: string, commands: readonly string[], options: readonly string[], argv?: readonly string[]): string {
  // yargs' choice errors span several lines; say the same in one.
  const choice = /^Invalid values:\s*Argument: (\S+), Given: (.*), Choices: (.*)$/s.exec(message.trim());
  if (choice) return `--${choice[1]} must be one of ${choice[3]!.replace(/"/g, '')}, got ${choice[2]}`;
  const missing = /^Not enough non-option arguments: got (\d+), need at least (\d+)$/.exec(message.trim());
  if (missing && argv?.[0] && !argv[0].startsWith('-')) {
    return `'${argv[0]}' needs at least ${missing[2]} argument${missing[2] === '1' ? '' : 's'}, got ${missing[1]}`;
  }
  const m = /^Unknown arguments?: (.*)$/.exec(message);
  if (!m) return message.replace(/\s*\n\s*/g, ' ');
  // yargs names an unknown '--data-dir' twice, as typed and camel-cased ('dataDir'): once is enough.
  const listed = m[1]!.split(', ');
  const kebab = (w: string) => w.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
  const words = listed.filter((w) => kebab(w) === w || !listed.includes(kebab(w)));
  const parts = words.map((w) => {
    const asCommand = closest(w, commands);
    if (argv !== undefined && argv[0] === w && !w.startsWith('-')) {
      return asCommand ? `unknown command '${w}' (did you mean '${asCommand}'?)` : `unknown command '${w}' (the commands are ${commands.join(', ')})`;
    }
    // Without the command line, a word without dashes may have been either.
    const bare = argv === undefined ? !w.startsWith('-') : argv.includes(w);
    const asOption = closest(w.replace(/^-+/, ''), options);
    if (asCommand && !w.startsWith('-')) return `unknown command '${w}' (did you mean '${asCommand}'?)`;
    // A one-letter flag was typed with one dash ('-q'), which yargs names without it.
    const typed = w.startsWith('-') ? w : w.length === 1 && argv?.includes('-' + w) ? '-' + w : '--' + w;
    const what = bare ? `argument '${w}'` : `option '${typed}'`;
    if (asOption) return `unknown ${what} (did you mean '--${asOption}'?)`;
    return `unknown ${what}`;
  });
  return parts.join('; ');
}
