// Running the craftgrad command line (bin/craftgrad.js) in a child node, as a user would.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The path of bin/craftgrad.js, for tests that spawn it themselves (signals, kills). */
export const cliPath = fileURLToPath(new URL('../../bin/craftgrad.js', import.meta.url));

/**
 * `craftgrad ...args` to completion: { code, signal, stdout, stderr }. cwd defaults to this
 * process's; env is added to this process's environment; timeout in ms (a hang fails the
 * test instead of stalling the suite).
 */
export function runCli(args, { cwd, env = {}, timeout = 180_000 } = {}) {
  const r = spawnSync(process.execPath, [cliPath, ...args], { cwd, encoding: 'utf8', env: { ...process.env, ...env }, timeout });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}
