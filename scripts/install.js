#!/usr/bin/env node
// npm's install hook (npm install, npm ci, npm rebuild craftgrad): use the addon that loads
// on this machine, else build from source with cmake-js. CRAFTGRAD_BUILD_FROM_SOURCE=1 (or
// npm's --build-from-source) always builds.
//
// The addon node-gyp-build picks is the local build (build/Release) when there is one, else
// the prebuild for this platform. A local build that loads is still built again when MPI
// or nvcc is found now and its configuration (settings left at AUTO) found none
// (scripts/build-native.js decideBuild): installing MPI after craftgrad then takes effect
// on the next npm install in a clone. A prebuild is used as it is: prebuilds have no MPI,
// and building one's replacement needs CRAFTGRAD_BUILD_FROM_SOURCE=1.
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildNative, planBuild } from './build-native.js';

const require = createRequire(import.meta.url);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function fromSourceRequested() {
  const flag = process.env.CRAFTGRAD_BUILD_FROM_SOURCE ?? process.env.npm_config_build_from_source;
  return flag === '1' || flag === 'true' || flag === 'craftgrad';
}

function existingBuildLoads() {
  let file;
  try {
    const nodeGypBuild = require('node-gyp-build');
    file = nodeGypBuild.path(root);
    require(file); // dlopen it: a prebuild that does not load here (libc, CPU) does not count
  } catch {
    return false;
  }
  const buildDir = join(root, 'build');
  const local = !relative(buildDir, file).startsWith('..') && !relative(buildDir, file).startsWith(sep);
  if (local) {
    const plan = planBuild(buildDir);
    if (plan.decision?.cause === 'environment') {
      console.log(`craftgrad: ${file.slice(root.length + 1)} loads, but ${plan.decision.reason}: building it again`);
      return false;
    }
  }
  console.log(`craftgrad: using ${file.slice(root.length + 1)}`);
  return true;
}

if (!fromSourceRequested() && existingBuildLoads()) process.exit(0);
process.exit(buildNative());
