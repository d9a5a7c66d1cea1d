// craftgrad report: the HTML report of one or several run directories (curves overlaid,
// summary table, conflict heatmaps). The work is in src/report; this file is the command line.
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { defaultReportPath, writeReport } from '../../report/index.js';
import { UsageError } from '../usage-error.js';

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function registerReport(y: Argv): Argv {
  return y.command('report <runs..>', 'Write an HTML report (curves, summary table, conflict heatmaps) of one or several runs',
    (b) => b
      .positional('runs', { type: 'string', describe: 'Run directories (runs/<name>); several are overlaid' })
      .option('output', { alias: 'o', type: 'string', describe: 'Output file (default: report.html in the run directory, or in the current directory for several runs)' })
      .example('$0 report runs/craft', 'writes runs/craft/report.html')
      .example('$0 report runs/baseline runs/craft -o compare.html', 'baseline against CRaFT'),
    async (args) => {
      const runs = (args.runs as string[] | undefined) ?? [];
      // A directory that does not exist is a mistake on the command line, not a run with
      // missing files: say so instead of writing a report of nothing.
      const missing = runs.filter((r) => !isDirectory(r));
      if (missing.length > 0) throw new UsageError(`not a run directory: ${missing.join(', ')}`, { help: false });
      // A directory with neither config.json nor metrics.jsonl holds no run: an empty report would hide the mistake.
      const notRuns = runs.filter((r) => !existsSync(join(r, 'config.json')) && !existsSync(join(r, 'metrics.jsonl')));
      if (notRuns.length > 0) throw new UsageError(`not a run directory (no config.json or metrics.jsonl): ${notRuns.join(', ')}`, { help: false });
      const out = args.output ?? defaultReportPath(runs);
      if (!isDirectory(dirname(resolve(out)))) throw new UsageError(`--output: the directory of ${out} does not exist`);
      if (isDirectory(out)) throw new UsageError(`--output: ${out} is a directory; name the file, e.g. ${out}/report.html`);
      const report = await writeReport(runs, out);
      const problems = report.runs.reduce((n, r) => n + r.problems.length, 0);
      const drawn = [...report.charts, ...report.heatmaps].filter((c) => c.svg).length;
      console.log(`report of ${runs.length} run${runs.length > 1 ? 's' : ''} written to ${report.path} ` +
        `(${drawn} charts${problems > 0 ? `; ${problems} notes on missing or skipped data, listed at the top of the page` : ''})`);
    });
}
