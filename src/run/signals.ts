// Graceful stop on SIGINT/SIGTERM. The first signal only raises a flag: the loop finishes
// its optimizer step, saves a checkpoint and exits with 128 + signal number. A second
// signal exits at once; the checkpoint being written (if any) is abandoned in its temp
// directory, so the previous checkpoint stays the newest valid one (with none, the next
// resume starts again from step 0 and logs the same rows again; see RunDirectory.begin).
//
// Node runs signal handlers on the event loop: a training loop must await something
// between steps (the checkpoint save does; otherwise `await setImmediate()`), or the
// flag is never seen.

/** Exit codes by signal: 128 + the signal number, as shells report them. */
export const SIGNAL_EXIT_CODES: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

export interface StopHandlerOptions {
  /** Signals to handle; default SIGINT and SIGTERM. */
  signals?: NodeJS.Signals[];
  /** Where notices go; default a line on stderr. */
  notify?: (text: string) => void;
  /** How the second signal exits; default process.exit. */
  exit?: (code: number) => void;
}

export interface StopHandlers {
  /** True once a stop signal arrived: finish the step, save, exit with `exitCode`. */
  shouldStop(): boolean;
  /** The first signal received, if any. */
  readonly signal: NodeJS.Signals | undefined;
  /** 130 for SIGINT, 143 for SIGTERM (undefined before a signal). */
  readonly exitCode: number | undefined;
  /** Removes the handlers (the default signal behaviour returns). */
  dispose(): void;
}

/** Installs the two-stage stop handlers; see the file comment for the loop's side of it. */
export function installStopHandlers(options: StopHandlerOptions = {}): StopHandlers {
  const signals = options.signals ?? ['SIGINT', 'SIGTERM'];
  const notify = options.notify ?? ((t: string) => void process.stderr.write(t + '\n'));
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let first: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    const code = SIGNAL_EXIT_CODES[sig] ?? 1;
    if (first === undefined) {
      first = sig;
      notify(`craftgrad: ${sig} received: finishing the current step and saving a checkpoint (send it again to exit at once)`);
      return;
    }
    notify(`craftgrad: ${sig} received again: exiting now; the previous checkpoint is kept`);
    exit(SIGNAL_EXIT_CODES[first] ?? code);
  };
  for (const s of signals) process.on(s, onSignal);
  return {
    shouldStop: () => first !== undefined,
    get signal() {
      return first;
    },
    get exitCode() {
      return first === undefined ? undefined : (SIGNAL_EXIT_CODES[first] ?? 1);
    },
    dispose: () => {
      for (const s of signals) process.off(s, onSignal);
    },
  };
}

/** Quotes a path for a POSIX shell when it needs it. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command that resumes a run directory. */
export function resumeCommand(runDir: string, base = 'npx craftgrad train'): string {
  return `${base} --resume ${shellQuote(runDir)}`;
}
