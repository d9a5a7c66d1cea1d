// The craftgrad command line (yargs). Commands live in ./commands, one file each; this
// file wires them, the configuration sources and the error policy: a usage error is one
// line on stderr and exit code 2, never a stack trace.
import yargs, { type Argv } from 'yargs';
import { registerTrain } from './commands/train.js';
import { registerInfo } from './commands/info.js';
import { registerInspect } from './commands/inspect.js';
import { registerExport } from './commands/export.js';
import { readOptionsFile } from './config-file.js';
import { registerBench } from './commands/bench.js';
import { registerReport } from './commands/report.js';
import { registerData } from './commands/data.js';
import { UsageError, explainUnknown } from './usage-error.js';
import { NATIVE_ENV_VARIABLES, optionNameOf } from './native-env.js';
import { setThreads } from '../backend.js';
import { MAX_THREADS } from '../validate.js';

export type Register = (y: Argv) => Argv;

/** Commands in the order `--help` lists them. */
const COMMANDS: Register[] = [registerTrain, registerInspect, registerExport, registerReport, registerData, registerInfo, registerBench];

function checkThreads(threads: unknown): true {
  if (threads !== undefined && (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS)) {
    throw new Error(`--threads must be an integer from 1 to ${MAX_THREADS}, got ${String(threads)}`);
  }
  return true;
}

/** Errors thrown inside yargs .check() callbacks: usage errors by construction. */
function isCheckError(error: Error): boolean {
  return error.constructor === Error;
}


export async function main(argv: string[]): Promise<number> {
  let parser = yargs(argv)
    .scriptName('craftgrad')
    .usage('$0 <command> [options]\n\nCRaFT fine-tuning with fused gradient-surgery kernels.')
    // Precedence (yargs): command line, then CRAFTGRAD_* variables, then --config, then defaults.
    .env('CRAFTGRAD')
    .config('config', 'Options from a JSON or YAML file (keys as the flags, or snake_case)', readOptionsFile)
    .strict()
    .recommendCommands()
    .demandCommand(1, 'Name a command (see craftgrad --help)')
    .help()
    .alias('h', 'help')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 100));
  // --threads applies to every command (the addon also reads CRAFTGRAD_THREADS when it loads):
  // one visible global option. The other native variables are hidden options nothing reads.
  parser = parser
    .option('threads', { type: 'number', describe: 'CPU threads (also CRAFTGRAD_THREADS)', defaultDescription: 'the number of cores', global: true })
    .check((args) => checkThreads(args.threads))
    .middleware((args) => {
      if (typeof args.threads === 'number') setThreads(args.threads);
    });
  for (const variable of NATIVE_ENV_VARIABLES) {
    if (variable !== 'CRAFTGRAD_THREADS') parser = parser.option(optionNameOf(variable), { hidden: true });
  }
  for (const register of COMMANDS) parser = register(parser);
  // The commands' names as registered (yargs' own list), for "did you mean" suggestions.
  const commandNames = (parser as unknown as { getInternalMethods(): { getCommandInstance(): { getCommands(): string[] } } })
    .getInternalMethods().getCommandInstance().getCommands();

  // yargs calls fail() for usage errors (and for errors thrown by a command's own checks).
  // It must throw: if it returned, yargs would go on and run the command anyway.
  parser = parser.fail((message, error) => {
    if (error instanceof UsageError && !message) throw error; // already one clear line (and knows whether --help helps)
    if (error && !message && !isCheckError(error)) throw error; // a bug: surface it
    // While a command is being parsed, the instance holds that command's options.
    const known = Object.keys((parser as unknown as { getOptions(): { key: Record<string, unknown> } }).getOptions().key);
    throw new UsageError(explainUnknown(message || error?.message || 'invalid command line', commandNames, known, argv));
  });
  try {
    await parser.parseAsync();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`craftgrad: ${error.message.replace(/^craftgrad: /, '')}\n${error.help ? 'Run craftgrad --help for usage.\n' : ''}`);
    return 2;
  }
  return typeof process.exitCode === 'number' ? process.exitCode : 0;
}
