// PyTorch through a Python interpreter, for the tests that compare a layer with upstream's
// own code run in torch (test/layers.test.mjs). Arrays travel as base64 of their bytes (NaN
// and −0 survive, which JSON numbers would not).
import { execFileSync } from 'node:child_process';

const CANDIDATES = ['/usr/bin/python3', 'python3'];

/** { python } for the first interpreter that imports torch, else { reason } (why the tests skip). */
export function findTorchPython() {
  const tried = [];
  for (const python of CANDIDATES) {
    try {
      const v = execFileSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      return { python, version: v };
    } catch {
      tried.push(python);
    }
  }
  return { reason: `no python3 with torch (tried ${tried.join(', ')})` };
}

/** Base64 of a typed array's bytes. */
export const toB64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
/** A Float32Array or Float64Array from base64. */
export function fromB64(s, Type) {
  const buf = Buffer.from(s, 'base64');
  return new Type(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

/** Runs `code` (reads a JSON object on stdin, prints one on stdout) and returns the parsed output. */
export function runPython(python, code, input) {
  const prelude = 'import base64, json, sys\nimport numpy as np\nimport torch\n' +
    'def arr(s, dt): return torch.from_numpy(np.frombuffer(base64.b64decode(s), dtype=dt).copy())\n' +
    'def b64(t, dt): return base64.b64encode(t.detach().numpy().astype(dt).tobytes()).decode()\n' +
    'd = json.load(sys.stdin)\n';
  return JSON.parse(execFileSync(python, ['-c', prelude + code], { input: JSON.stringify(input), encoding: 'utf8' }));
}
