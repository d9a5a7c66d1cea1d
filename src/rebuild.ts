// The command that rebuilds the native addon from where this copy of craftgrad stands, for
// every message that asks for a rebuild (no MPI, no CUDA backend, an addon that does not
// load) and for `craftgrad info`. Loads nothing native: src/native.ts uses it when the
// addon itself cannot be loaded.
//   - a clone (the package is not inside a node_modules folder): `npm run build:native`
//     in the clone. It reconfigures by itself when MPI or nvcc is found now and the
//     configured build found none (scripts/build-native.js).
//   - a dependency: `CRAFTGRAD_BUILD_FROM_SOURCE=1 npm rebuild craftgrad` in the project
//     that holds the node_modules folder (npm rebuild runs scripts/install.js, which would
//     otherwise keep a prebuilt binary that loads; prebuilds have no MPI).
//   - a global install (npm install -g): the same with `npm rebuild -g`.
import { dirname, join, parse, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** This copy of craftgrad's package root (src/native.ts's packageRoot, computed without loading the addon). */
const thisPackageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface RebuildCommand {
  /** How craftgrad is installed here. */
  readonly form: 'clone' | 'dependency' | 'global';
  /** The shell command, to be run in `cwd`. */
  readonly command: string;
  /** The folder to run it in. */
  readonly cwd: string;
}

/** npm's global node_modules folder: <prefix>/lib/node_modules (<prefix>/node_modules on Windows). */
function globalModules(env: NodeJS.ProcessEnv): string[] {
  const prefix = env.npm_config_prefix || env.PREFIX || dirname(dirname(process.execPath));
  return [join(prefix, 'lib', 'node_modules'), join(prefix, 'node_modules')];
}

/**
 * The rebuild command for the craftgrad package at `root` (default: this one). `root`
 * is a real path (Node resolves the symlinks of a linked package, so a clone linked into a
 * project with `npm link` or `file:` is a clone).
 */
export function rebuildCommand(root: string = thisPackageRoot, env: NodeJS.ProcessEnv = process.env): RebuildCommand {
  const parts = root.split(sep);
  const first = parts.indexOf('node_modules');
  if (first < 0) return { form: 'clone', command: 'npm run build:native', cwd: root };
  const modules = parts.slice(0, first + 1).join(sep) || parse(root).root;
  const project = dirname(modules);
  if (globalModules(env).includes(modules)) {
    return { form: 'global', command: 'CRAFTGRAD_BUILD_FROM_SOURCE=1 npm rebuild -g craftgrad', cwd: project };
  }
  return { form: 'dependency', command: 'CRAFTGRAD_BUILD_FROM_SOURCE=1 npm rebuild craftgrad', cwd: project };
}

/** The rebuild command in words: "`npm run build:native` in /home/me/craftgrad". */
export function rebuildAdvice(root?: string, env?: NodeJS.ProcessEnv): string {
  const r = rebuildCommand(root, env);
  return r.form === 'global' ? `\`${r.command}\`` : `\`${r.command}\` in ${r.cwd}`;
}
