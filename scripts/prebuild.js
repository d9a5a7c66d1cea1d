#!/usr/bin/env node
// npm run prebuilds: makes prebuilds/<platform>-<arch>/ with prebuildify. prebuildify can
// only drive node-gyp, so its --node-gyp hook points at a shim that runs cmake-js.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuildify = join(dirname(require.resolve('prebuildify/package.json')), 'bin.js');
const shim = join(root, 'scripts', 'prebuildify-cmake-shim.js');

const r = spawnSync(process.execPath, [prebuildify, '--napi', '--strip', '--tag-libc', `--node-gyp=${shim}`, ...process.argv.slice(2)],
  { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
