// Runs one fuzz target in this process, for the parent (run.mjs) to watch: it may crash or
// hang, the parent sees it. Usage: node child.mjs '<json>' with
//   { target, seed, runs, path?, files?: true, work, progress }
// - runs cases with fast-check (seed, numRuns; `path` replays one case), or with files: true,
//   the target's committed regression inputs;
// - before each case writes its index to `progress` (the parent's per-case time limit and
//   the case named when the process dies);
// - checks each outcome: a valid result, or an error the target accepts whose message is
//   non-empty and one line; and that the case did not raise the peak RSS past the bound;
// - prints one JSON line: cases, seconds, peak RSS, and the first failure (shrunk) if any.
import { openSync, writeSync, readFileSync, mkdirSync } from 'node:fs';
import fc from 'fast-check';
import { targetByName, regressionFiles } from './targets.mjs';

const opts = JSON.parse(process.argv[2]);
const target = targetByName(opts.target);
const progressFd = openSync(opts.progress, 'w');
const progress = (s) => writeSync(progressFd, String(s).padEnd(40, ' '), 0, 'utf8');

/** Bytes a single case may add to the process's peak RSS: generous for GC noise, far below what an unbounded allocation takes. */
const CASE_RSS_BOUND = 96 * 1024 * 1024;
const FIXED_RSS_BOUND = 768 * 1024 * 1024;
const peak = () => process.resourceUsage().maxRSS * 1024;

mkdirSync(opts.work, { recursive: true });
const ctx = await target.setup(opts.work);
const accept = target.accept(ctx);
const rssAtStart = peak();
let cases = 0, ok = 0, errors = 0;
const errorKinds = new Map();

function describe(input) {
  if (input instanceof Uint8Array) return { bytes: input.length, base64: input.length <= 65536 ? Buffer.from(input).toString('base64') : undefined };
  return undefined;
}

/** One case: undefined when fine, else why not. */
async function runCase(input) {
  const before = peak();
  let why;
  try {
    await target.run(ctx, input);
    ok++;
  } catch (e) {
    errors++;
    why = accept(e);
    const msg = e instanceof Error ? e.message : String(e);
    if (why === null) {
      if (typeof msg !== 'string' || msg.trim() === '') why = 'the error message is empty';
      else if (/[\r\n]/.test(msg) && !(e.name === 'RunError' && msg.split('\n').every((l) => l.trim() !== ''))) why = 'the error message spans several lines';
    }
    const key = `${e?.constructor?.name}: ${msg.replace(/\d+/g, 'N').slice(0, 60)}`;
    errorKinds.set(key, (errorKinds.get(key) ?? 0) + 1);
    if (why) why = `${why}: ${e?.constructor?.name}: ${msg.slice(0, 400)}${e?.stack && why.startsWith('threw') ? `\n${e.stack.split('\n').slice(1, 6).join('\n')}` : ''}`;
  }
  const after = peak();
  if (!why && (after - before > CASE_RSS_BOUND || after - rssAtStart > FIXED_RSS_BOUND)) {
    why = `memory past the bound: peak RSS rose by ${((after - before) / 2 ** 20).toFixed(0)} MiB in this case (${((after - rssAtStart) / 2 ** 20).toFixed(0)} MiB since start)`;
  }
  return why;
}

const t0 = performance.now();
let failure;
if (opts.files) {
  for (const f of regressionFiles(target.name)) {
    progress(`file ${f.name}`);
    cases++;
    const why = await runCase(new Uint8Array(readFileSync(f.path)));
    if (why) { failure = { file: f.name, error: why }; break; }
  }
} else {
  let index = 0;
  let last;
  const property = fc.asyncProperty(target.arbitrary(ctx), async (c) => {
    progress(index++);
    cases++;
    const input = target.input(ctx, c);
    const why = await runCase(input);
    if (why) { last = { error: why, input: describe(input) }; throw new Error(why); }
    return true;
  });
  const params = { seed: opts.seed, numRuns: opts.runs, ...(opts.path !== undefined ? { path: String(opts.path) } : {}) };
  const r = await fc.check(property, params);
  if (r.failed) {
    failure = { seed: r.seed, path: r.counterexamplePath, error: `the harness failed: ${r.errorInstance?.stack ?? r.error}`, shrinks: r.numShrinks, counterexample: JSON.stringify(r.counterexample, (k, v) => (v instanceof Uint8Array ? `<${v.length} bytes>` : v)).slice(0, 2000), ...last };
  }
}
const seconds = (performance.now() - t0) / 1000;
progress('done');
console.log(JSON.stringify({
  target: target.name, seed: opts.seed, cases, ok, errors, seconds, casesPerSecond: cases / seconds,
  peakRssMiB: peak() / 2 ** 20, errorKinds: [...errorKinds].sort((a, b) => b[1] - a[1]).slice(0, 8), failure,
}));
// Native targets may leave worker-thread work or handles; the parent only needs the line above.
process.exit(0);
