#!/usr/bin/env node
// npm's install hook: use a prebuilt addon when one loads on this machine, else build
// from source with cmake-js. CRAFTGRAD_BUILD_FROM_SOURCE=1 (or npm's
// --build-from-source) always builds.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildNative } from './build-native.js';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function fromSourceRequested() {
  const flag = process.env.CRAFTGRAD_BUILD_FROM_SOURCE ?? process.env.npm_config_build_from_source;
  return flag === '1' || flag === 'true' || flag === 'craftgrad';
}

function existingBuildLoads() {
  try {
    const nodeGypBuild = require('node-gyp-build');
    const file = nodeGypBuild.path(root);
    require(file); // dlopen it: a prebuild that does not load here (libc, CPU) does not count
    console.log(`craftgrad: using ${file.slice(root.length + 1)}`);
    return true;
  } catch {
    return false;
  }
}

if (!fromSourceRequested() && existingBuildLoads()) process.exit(0);
process.exit(buildNative());
