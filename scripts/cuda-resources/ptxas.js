// Compiles the CUDA backend's kernels the way the build does (flags and architectures read
// from native/cuda/cuda.cmake, so there is one list of them) and reads back what ptxas and
// the PTX say about each kernel: registers, spills, stack, static shared memory, the block
// size it declares (__launch_bounds__ → .maxntid), and its 16-byte vector memory accesses.
// This is what the CUDA emulator cannot judge; no GPU is needed.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cudaDir = join(root, 'native', 'cuda');

/** nvcc as CMake would find it: $CUDACXX, then PATH, then /usr/local/cuda. Null if none. */
export function findNvcc() {
  const candidates = [process.env.CUDACXX, 'nvcc', '/usr/local/cuda/bin/nvcc'].filter(Boolean);
  for (const c of candidates) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return c;
  }
  return null;
}

/**
 * The device compile options and the SM versions of native/cuda/cuda.cmake.
 * @returns {{ options: string[], sms: number[] }}
 */
export function buildSettings(cmakeText = readFileSync(join(cudaDir, 'cuda.cmake'), 'utf8')) {
  const archs = /set\(CRAFTGRAD_CUDA_ARCHS\s+"([^"]+)"/.exec(cmakeText);
  const opts = /set\(CRAFTGRAD_CUDA_OPTIONS ([^)]+)\)/.exec(cmakeText);
  if (!archs || !opts) throw new Error('cuda-resources: cannot find CRAFTGRAD_CUDA_ARCHS or CRAFTGRAD_CUDA_OPTIONS in cuda.cmake');
  const sms = archs[1].split(';').filter((a) => a.endsWith('-real')).map((a) => Number.parseInt(a, 10));
  const std = /CUDA_STANDARD (\d+)/.exec(cmakeText);
  return { options: [...opts[1].trim().split(/\s+/), `-std=c++${std ? std[1] : 17}`], sms };
}

/** `void ns::(anonymous namespace)::k<1, 2>(int, float*)` → `k<1, 2>`; c++filt if present. */
function shortNames(mangled) {
  const r = spawnSync('c++filt', [], { input: mangled.join('\n'), encoding: 'utf8' });
  const lines = r.status === 0 ? r.stdout.split('\n') : mangled;
  return mangled.map((m, i) => {
    let s = lines[i] ?? m;
    let depth = 0;
    let end = s.length;
    for (let j = 0; j < s.length; ++j) {  // cut the parameter list: the first '(' outside <>
      if (s[j] === '<') depth++;
      else if (s[j] === '>') depth--;
      else if (s[j] === '(' && depth === 0 && !s.startsWith('(anonymous', j)) { end = j; break; }
    }
    s = s.slice(0, end).replace(/^void /, '');
    const templ = s.indexOf('<');
    const head = templ < 0 ? s : s.slice(0, templ);
    return head.slice(head.lastIndexOf('::') + 2) + (templ < 0 ? '' : s.slice(templ));
  });
}

/** Parses `nvcc -Xptxas -v` output: one record per (entry function, sm). */
export function parsePtxasLog(log) {
  const out = [];
  let cur = null;
  for (const line of log.split('\n')) {
    let m = /Compiling entry function '([^']+)' for 'sm_(\d+)'/.exec(line);
    if (m) {
      cur = { mangled: m[1], sm: Number(m[2]), registers: 0, sharedBytes: 0, stackBytes: 0, spillStores: 0, spillLoads: 0 };
      out.push(cur);
      continue;
    }
    if (!cur) continue;
    m = /(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (m) [cur.stackBytes, cur.spillStores, cur.spillLoads] = m.slice(1).map(Number);
    m = /Used (\d+) registers/.exec(line);
    if (m) cur.registers = Number(m[1]);
    m = /(\d+) bytes smem/.exec(line);
    if (m) cur.sharedBytes = Number(m[1]);
  }
  return out;
}

/** Splits PTX into entries: name → { threads (from .maxntid, or null), vector accesses }. */
export function parsePtx(ptx) {
  const entries = new Map();
  const parts = ptx.split(/^(?=(?:\.(?:visible|weak|extern)\s+)?\.(?:entry|func)\s)/m);
  for (const part of parts) {
    const m = /^(?:\.(?:visible|weak|extern)\s+)?\.entry\s+([\w$]+)/.exec(part);
    if (!m) continue;
    const ntid = /\.maxntid\s+(\d+),\s*(\d+),\s*(\d+)/.exec(part);
    const count = (re) => (part.match(re) ?? []).length;
    entries.set(m[1], {
      threads: ntid ? Number(ntid[1]) * Number(ntid[2]) * Number(ntid[3]) : null,
      minCtasPerSm: Number((/\.minnctapersm\s+(\d+)/.exec(part) ?? [])[1] ?? 0) || null,
      globalLoads128: count(/\bld\.global(?:\.\w+)*\.v4\.(?:f32|b32|u32)\b/g),
      globalStores128: count(/\bst\.global(?:\.\w+)*\.v4\.(?:f32|b32|u32)\b/g),
      sharedLoads128: count(/\bld\.shared(?:\.\w+)*\.v4\.(?:f32|b32|u32)\b/g),
    });
  }
  return entries;
}

/**
 * Compiles every .cu of native/cuda for the build's SM versions and returns one record per
 * kernel: its PTX facts and, per SM version, ptxas's resource usage.
 * @param {{ nvcc: string, sms?: number[], files?: string[] }} opts
 */
export async function compileKernels({ nvcc, sms, files }) {
  const settings = buildSettings();
  const targets = sms ?? settings.sms;
  const sources = files ?? readdirSync(cudaDir).filter((f) => f.endsWith('.cu')).sort();
  const tmp = mkdtempSync(join(tmpdir(), 'craftgrad-ptxas-'));
  try {
    const jobs = sources.map((file) => {
      const src = join(cudaDir, file);
      const common = [...settings.options, '-I', join(root, 'native'), '-I', cudaDir];
      const ptxPath = join(tmp, `${file}.ptx`);
      const gencode = targets.flatMap((sm) => ['-gencode', `arch=compute_${sm},code=sm_${sm}`]);
      return {
        file,
        ptxPath,
        runs: [
          [...common, '-Xptxas', '-v', ...gencode, '-c', src, '-o', join(tmp, `${file}.o`)],
          [...common, `-arch=compute_${Math.max(...targets)}`, '--ptx', src, '-o', ptxPath],
        ],
      };
    });
    const results = await runAll(nvcc, jobs.flatMap((j) => j.runs));
    const kernels = [];
    jobs.forEach((job, i) => {
      const [compile, ptx] = [results[2 * i], results[2 * i + 1]];
      for (const r of [compile, ptx]) {
        if (r.status !== 0) throw new Error(`cuda-resources: nvcc failed on ${job.file}:\n${r.stderr}`);
      }
      const usage = parsePtxasLog(compile.stdout + compile.stderr);
      const entries = parsePtx(readFileSync(job.ptxPath, 'utf8'));
      const mangled = [...entries.keys()];
      const names = shortNames(mangled);
      mangled.forEach((m, k) => {
        const perSm = {};
        for (const u of usage.filter((x) => x.mangled === m)) perSm[u.sm] = u;
        kernels.push({ file: job.file, name: names[k], mangled: m, ...entries.get(m), perSm });
      });
    });
    return { sms: targets, kernels };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

// nvcc is single-threaded: compile every file at once (CI has two cores).
function runAll(cmd, argLists) {
  return Promise.all(argLists.map((args) => new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr: stderr || String(err ?? '') });
    });
  })));
}
