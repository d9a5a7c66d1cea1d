// craftgrad inspect PATH: what a checkpoint or a run directory holds (tensors and shapes,
// step, λ, validity, the checkpoint a resume would use).
import type { Argv } from 'yargs';
import { existsSync } from 'node:fs';
import { inspect, formatInspection } from '../../run/inspect.js';
import { UsageError } from '../usage-error.js';

export function registerInspect(y: Argv): Argv {
  return y.command('inspect <path>', 'Show what a checkpoint or run directory holds, and whether it is valid',
    (b) => b
      .positional('path', { type: 'string', describe: 'A run directory or one of its checkpoints/step-NNNNNN' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the description as JSON' }),
    async (args) => {
      const path = args.path as string;
      if (!existsSync(path)) throw new UsageError(`inspect: no such directory: ${path}`);
      const info = await inspect(path);
      process.stdout.write(args.json ? JSON.stringify(info, null, 2) + '\n' : formatInspection(info) + '\n');
      // A damaged checkpoint, or a run with nothing to resume from, is worth a non-zero
      // exit for scripts.
      const usable = info.kind === 'checkpoint' ? info.checkpoint.valid : info.run.resumeFrom !== undefined;
      if (!usable) process.exitCode = 1;
    });
}
