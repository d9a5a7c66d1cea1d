#!/usr/bin/env node
// What craftgrad's own safetensors reader sees in every .safetensors file of every checkpoint
// of a run, as JSON, for scripts/device/check_safetensors.py to compare against an
// independent reader (safetensors.torch): per file, the metadata and, per tensor, dtype,
// shape and the SHA-256 of its little-endian bytes (so the values are compared bit for bit).
//   node scripts/device/dump-checkpoints.mjs RUN_DIR > checkpoints.json
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensorsFile } from '../../dist/formats/safetensors.js';

const runDir = process.argv[2];
if (!runDir) {
  console.error('usage: node scripts/device/dump-checkpoints.mjs RUN_DIR');
  process.exit(2);
}
const checkpoints = join(runDir, 'checkpoints');
const files = {};
for (const step of readdirSync(checkpoints).sort()) {
  for (const name of readdirSync(join(checkpoints, step)).sort()) {
    if (!name.endsWith('.safetensors')) continue;
    const path = join(checkpoints, step, name);
    const { tensors, metadata } = await readSafetensorsFile(path);
    const entry = { metadata: metadata ?? null, tensors: {} };
    for (const [tensorName, t] of Object.entries(tensors)) {
      const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      entry.tensors[tensorName] = { dtype: t.dtype, shape: t.shape, sha256: createHash('sha256').update(bytes).digest('hex') };
    }
    files[join('checkpoints', step, name)] = entry;
  }
}
if (Object.keys(files).length === 0) {
  console.error(`dump-checkpoints: no .safetensors file under ${checkpoints}`);
  process.exit(1);
}
console.log(JSON.stringify({ runDir, files }, null, 1));
