#!/usr/bin/env node
// Stands in for node-gyp when prebuildify calls `node-gyp rebuild --target=.. --arch=..
// --release`: a clean cmake-js build into build/Release, where prebuildify looks. Without
// the benchmark-only natives (bench/native): a prebuild ships in the npm package.
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildNative } from './build-native.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
if (args[0] !== 'rebuild') {
  console.error(`prebuildify-cmake-shim: expected 'rebuild', got '${args[0]}'`);
  process.exit(1);
}
// Nor MPI: a prebuild must load where no MPI library is installed.
const passed = ['--CDCRAFTGRAD_BENCH=OFF', '--CDCRAFTGRAD_MPI=OFF'];
for (const a of args.slice(1)) {
  if (a.startsWith('--arch=')) passed.push(a);
  else if (a === '--debug') process.env.CRAFTGRAD_DEBUG = '1';
  // --target and --devdir concern node-gyp's header download; a Node-API build needs neither.
}
rmSync(join(root, 'build'), { recursive: true, force: true });
process.exit(buildNative(passed));
