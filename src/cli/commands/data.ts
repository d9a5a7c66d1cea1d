// craftgrad data DIR: what an RLDS/TFDS robot dataset holds and what training takes from it
// (episodes, steps, samples, tasks, statistics); --export writes every training sample as the
// VLA tensor file (src/model/vla/rlds-export.ts), --page an HTML page of a few episodes as the
// model sees them (src/cli/data-page.ts). The data is read as `train --data DIR` reads it
// (loadRldsForVla): a bad shard, record or feature is one line and exit code 2, before any
// file is written.
import { existsSync, statSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import type { Argv } from 'yargs';
import { FormatError } from '../../formats/errors.js';
import { LIBERO, loadPromptTokenizer, openTfdsDataset, readDatasetStatistics, readPadTokenId } from '../../data/rlds/index.js';
import { loadRldsForVla } from '../../model/vla/rlds-source.js';
import { exportRldsSamples } from '../../model/vla/rlds-export.js';
import { readActionQueryCount } from '../../model/vla/query-count.js';
import { dataSummary } from '../data-summary.js';
import { writeDataPage } from '../data-page.js';
import { UsageError } from '../usage-error.js';

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** An output file's checks: its directory exists and it is not a directory itself. */
function checkOutput(flag: string, path: string): void {
  if (isDirectory(path)) throw new UsageError(`${flag} ${path} is a directory; name the file`, { help: false });
  if (!isDirectory(dirname(resolve(path)))) throw new UsageError(`${flag} ${path}: the directory ${dirname(path)} does not exist`, { help: false });
}

function checkInteger(flag: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new UsageError(`${flag} must be an integer from ${lo} to ${hi}, got ${String(v)}`);
  return v;
}

/** A malformed dataset, statistics file or tokenizer: one line, exit code 2, no --help. */
function asUsageProblem(e: unknown): UsageError | undefined {
  if (e instanceof UsageError) return e;
  if (e instanceof FormatError || e instanceof RangeError || e instanceof TypeError) return new UsageError(`data: ${e.message}`, { help: false });
  return undefined;
}

async function data(args: Record<string, unknown>): Promise<void> {
  const dir = args.dir as string, split = args.split as string;
  if (!existsSync(dir)) throw new UsageError(`data: no such directory: ${dir}`, { help: false });
  if (!isDirectory(dir)) throw new UsageError(`data: ${dir} is a file, not a TFDS dataset directory`, { help: false });
  const exportTo = args.export as string | undefined, page = args.page as string | undefined, model = args.model as string | undefined;
  if (exportTo !== undefined) {
    if (extname(exportTo).toLowerCase() !== '.safetensors') throw new UsageError(`--export ${exportTo}: the file must end in .safetensors (it is written as it is made, which .npz cannot be)`);
    checkOutput('--export', exportTo);
  }
  if (page !== undefined) checkOutput('--page', page);
  const given = (k: string) => args[k] !== undefined;
  if (exportTo === undefined && page === undefined) {
    const stray = ['image-size', 'augment', 'views', 'seed', 'model'].filter(given);
    if (stray.length > 0) throw new UsageError(`${stray.map((k) => `--${k}`).join(', ')} appl${stray.length > 1 ? 'y' : 'ies'} to --export and --page; give one of them`);
  }
  if (model !== undefined) {
    if (exportTo === undefined) throw new UsageError('--model gives --export its input_ids; give --export too');
    if (!isDirectory(model)) throw new UsageError(`--model ${model}: no such directory`, { help: false });
  }
  // No yargs defaults for these four: an option given without --export or --page is refused above.
  const imageSize = checkInteger('--image-size', args['image-size'] ?? 224, 1, 4096);
  const views = checkInteger('--views', args.views ?? 2, 1, 16);
  const seed = checkInteger('--seed', args.seed ?? 0, 0, 0xffffffff);
  const augment = args.augment === true;

  // The cheap inputs first, so their mistakes come before the pass over the episodes.
  const tokenizer = model !== undefined ? await loadPromptTokenizer(model) : undefined;
  const stats = args.stats as string | undefined;
  const statistics = stats === undefined ? undefined
    : await readDatasetStatistics(stats, { name: (await openTfdsDataset(dir)).name, actionDim: LIBERO.actionDim, proprioDim: LIBERO.proprioDim });
  const d = await loadRldsForVla(dir, { split, ...(statistics ? { statistics, statisticsFile: stats! } : {}) });
  if (views > d.imageKeys.length && (exportTo !== undefined || page !== undefined)) {
    throw new UsageError(`--views ${views}: ${d.source} has ${d.imageKeys.length} camera view(s) (${d.imageKeys.join(', ')})`, { help: false });
  }
  const origin = stats === undefined ? 'computed from the episodes as upstream computes them' : `from --stats ${stats}`;
  process.stdout.write(dataSummary(d, { split, statistics: origin }) + '\n');

  if (exportTo !== undefined) {
    let prompts;
    if (tokenizer !== undefined) {
      const { queries } = await readActionQueryCount(model!);
      const pad = await readPadTokenId(model!, tokenizer);
      prompts = { tokenizer, queries, padId: pad?.id ?? null };
    }
    const r = await exportRldsSamples(d, exportTo, { imageSize, views, augment, seed, ...(prompts ? { prompts } : {}) });
    process.stdout.write(`exported ${r.samples} samples to ${r.path}: images (${r.samples}, ${r.views}, ${r.imageSize}, ${r.imageSize}, 3) ` +
      `${augment ? `augmented (seed ${seed})` : 'not augmented'}, proprio, actions normalised, episode, t, task, instruction` +
      `${r.inputIds ? `, input_ids (${r.samples}, ${r.inputIds.length})` : ' (no input_ids: give --model for them)'}; statistics in ${r.statisticsPath}\n`);
    if (r.inputIds?.padded) {
      process.stdout.write(`note: prompts tokenize to ${r.inputIds.shortest} to ${r.inputIds.length} ids; shorter rows are right-padded with pad id ${r.inputIds.padId} ` +
        `(input_lengths holds each row's length). craftgrad's model takes no padding: train from ${dir} itself, not from this file.\n`);
    }
  }
  if (page !== undefined) {
    const about = [`${d.samples.episodes} episodes, ${d.samples.size} samples, ${d.samples.instructions.length} instructions`, `statistics ${origin}`];
    const r = await writeDataPage(d, page, { imageSize, views, augment, seed, about });
    process.stdout.write(`page of ${r.episodes} episodes (${r.images} images) written to ${r.path}\n`);
  }
}

export function registerData(y: Argv): Argv {
  return y.command('data <dir>', 'Show what an RLDS robot dataset (a TFDS directory) holds; export its training samples or a page of its frames',
    (b) => b
      .positional('dir', { type: 'string', describe: 'A TFDS dataset directory (dataset_info.json, features.json, the shards), or its parent with version folders' })
      .option('split', { type: 'string', default: 'train', describe: 'The split to read' })
      .option('stats', { type: 'string', describe: 'Normalise with this dataset_statistics.json instead of computing the statistics' })
      .option('export', { type: 'string', describe: 'Write every training sample to this .safetensors file (the VLA tensor file), and dataset_statistics.json beside it' })
      .option('page', { type: 'string', describe: 'Write an HTML page of the first 3 episodes (6 frames each, every view) and their actions' })
      .option('model', { type: 'string', describe: 'A VLA-Adapter directory: its tokenizer gives --export its input_ids' })
      .option('image-size', { type: 'number', defaultDescription: '224', describe: 'Image side for --export and --page' })
      .option('views', { type: 'number', defaultDescription: '2', describe: 'Camera views per sample (primary, wrist)' })
      .option('augment', { type: 'boolean', defaultDescription: 'false', describe: 'Augment the frames as training does (seeded by --seed and the sample)' })
      .option('seed', { type: 'number', defaultDescription: '0', describe: 'Seed of the augmentation' })
      .example('$0 data libero_spatial_no_noops', 'episodes, tasks and statistics')
      .example('$0 data DIR --export samples.safetensors --model VLA_DIR', 'the samples training takes, with input_ids')
      .example('$0 data DIR --page data.html --augment', 'a page of frames as the model sees them'),
    async (args) => {
      try {
        await data(args as Record<string, unknown>);
      } catch (e) {
        const usage = asUsageProblem(e);
        if (usage) throw usage;
        throw e;
      }
    });
}
