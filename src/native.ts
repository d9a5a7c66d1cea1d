// Loads the native addon through node-gyp-build: the local build (build/Release) when there
// is one, else the prebuild for this platform (scripts/install.js builds when no addon
// loads, or when a local build found no MPI or nvcc that is found now). The only loader of
// the addon: the core modules call it, and the layers above core call its operations
// through native-calls.ts, never the binding itself.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import type { NativeBinding } from '../binding.js';
import { MAX_THREADS } from './validate.js';
import { rebuildAdvice } from './rebuild.js';

const require = createRequire(import.meta.url);
export const packageRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

function load(): NativeBinding {
  const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeBinding;
  try {
    return nodeGypBuild(packageRoot);
  } catch (cause) {
    throw new Error(
      `craftgrad: the native addon could not be loaded. Rebuild it with ${rebuildAdvice()} ` +
        '(needs cmake and a C++17 compiler; see README "Troubleshooting").',
      { cause },
    );
  }
}

export const binding: NativeBinding = load();

/** Validates CRAFTGRAD_THREADS (the native pool reads it too) so that a typo is reported, not ignored. */
function checkThreadsVariable(): void {
  const raw = process.env.CRAFTGRAD_THREADS;
  if (raw === undefined || raw === '') return;
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_THREADS) {
    throw new RangeError(`CRAFTGRAD_THREADS must be an integer from 1 to ${MAX_THREADS}, got '${raw}'`);
  }
}
checkThreadsVariable();
