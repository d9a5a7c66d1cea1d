// craftgrad export RUN --merged DIR: a VLA-Adapter run's checkpoint as the merged model
// directory upstream's evaluation loads (AutoModelForVision2Seq.from_pretrained(DIR), then
// the head and proprio projector .pt files and dataset_statistics.json beside it): every
// LoRA factor folded into its base weight, the trained action queries in place
// (src/model/vla/outputs.ts exportMergedVla). RUN is a run directory (its newest valid
// checkpoint) or one checkpoint.
import type { Argv } from 'yargs';
import { existsSync } from 'node:fs';
import { RunError } from '../../run/run-error.js';
import { loadCheckpoint } from '../../run/checkpoint-read.js';
import { FormatError } from '../../formats/errors.js';
import { defaultTorchPtIo, exportMergedVla, readDatasetStatistics, readVlaConfigFiles, readVlaHeadFiles } from '../../model/vla/index.js';
import { UsageError } from '../usage-error.js';

export function registerExport(y: Argv): Argv {
  return y.command('export <run>', 'Write a trained VLA-Adapter run as a merged model directory (LoRA folded in)',
    (b) => b
      .positional('run', { type: 'string', describe: 'A run directory (its newest valid checkpoint) or one of its checkpoints/step-NNNNNN' })
      .option('merged', { type: 'string', demandOption: true, requiresArg: true, describe: 'The merged model directory to write (replaced whole, atomically)' }),
    async (args) => {
      const run = args.run as string, out = args.merged as string;
      if (!existsSync(run)) throw new UsageError(`export: no such run or checkpoint directory: ${run}`, { help: false });
      try {
        const ck = await loadCheckpoint(run);
        const kind = (ck.model as { kind?: unknown } | undefined)?.kind;
        if (kind !== 'vla_adapter') {
          throw new UsageError(`export: ${ck.dir} is a ${typeof kind === 'string' ? kind : 'adapter_policy'} checkpoint; --merged writes VLA-Adapter runs (train --model DIR on a VLA-Adapter directory)`, { help: false });
        }
        const c = ck.config as { model: string; rank: number; alpha: number; vla_config?: string | null };
        if (c.vla_config) {
          throw new UsageError(`export: ${ck.dir} was trained on the Prismatic base ${c.model}; --merged folds LoRA into an HF VLA-Adapter directory's model.safetensors (its lora_adapter/ and .pt files are the checkpoint's own)`, { help: false });
        }
        const { config } = await readVlaConfigFiles(c.model);
        const torchPt = defaultTorchPtIo();
        // The checkpoint's own head files: its trained head and the film_gen written beside it.
        const heads = await readVlaHeadFiles(ck.dir, { torchPt, hiddenSize: config.text.hiddenSize, numLayers: config.text.numLayers, step: ck.step });
        if (heads === null) throw new UsageError(`export: ${ck.dir} has no action_head--${ck.step}_checkpoint.pt`, { help: false });
        const trained = new Map<string, Float32Array>();
        for (const [n, t] of Object.entries(ck.tensors.model ?? {})) trained.set(n, t.data as Float32Array);
        await exportMergedVla(out, {
          baseDir: c.model, config, rank: c.rank, alpha: c.alpha, trained, step: ck.step,
          head: { hiddenSize: config.text.hiddenSize, headBlocks: heads.headBlocks, actionDims: heads.actionDims, proprioDim: heads.proprioDim, filmGen: heads.filmGen },
          datasetStatistics: await readDatasetStatistics(ck.dir), torchPt,
        });
        process.stdout.write(`craftgrad: wrote the merged model of ${ck.dir} (step ${ck.step}) to ${out}\n`);
      } catch (e) {
        if (e instanceof RunError || e instanceof FormatError) throw new UsageError(`export: ${e.message}`, { help: false });
        throw e;
      }
    });
}
