// craftgrad inspect PATH: what a checkpoint or a run directory holds (tensors and shapes,
// step, λ, validity, the checkpoint a resume would use).
import type { Argv } from 'yargs';
import { existsSync, statSync } from 'node:fs';
import { RunError } from '../../run/run-error.js';
import { inspect, formatInspection } from '../../run/inspect.js';
import { UsageError } from '../usage-error.js';

export function registerInspect(y: Argv): Argv {
  return y.command('inspect <path>', 'Show what a checkpoint or run directory holds, and whether it is valid',
    (b) => b
      .positional('path', { type: 'string', describe: 'A run directory or one of its checkpoints/step-NNNNNN' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the description as JSON' }),
    async (args) => {
      const path = args.path as string;
      if (!existsSync(path)) throw new UsageError(`inspect: no such directory: ${path}`, { help: false });
      if (!statSync(path).isDirectory()) throw new UsageError(`inspect: ${path} is a file, not a run directory or a checkpoint directory`, { help: false });
      let info;
      try {
        info = await inspect(path);
      } catch (e) {
        // Not a run or a checkpoint (or unreadable): one line, not a stack trace.
        if (e instanceof RunError) throw new UsageError(`inspect: ${e.message}`, { help: false });
        throw e;
      }
      process.stdout.write(args.json ? JSON.stringify(info, null, 2) + '\n' : formatInspection(info) + '\n');
      // A damaged checkpoint, or a run with nothing to resume from, is worth a non-zero
      // exit for scripts.
      const usable = info.kind === 'checkpoint' ? info.checkpoint.valid : info.run.resumeFrom !== undefined;
      if (!usable) process.exitCode = 1;
    });
}
