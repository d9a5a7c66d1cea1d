// `craftgrad data DIR --page FILE`: the first few episodes that give samples, each with a few
// of its frames (every view, as the export writes that sample's frame: augmentation included
// with --augment) and its actions after the LIBERO transform and BOUNDS_Q99 normalisation, as
// one HTML file (src/report/data-page.ts).
import { pngDataUrl } from '../data/images/index.js';
import { LIBERO, normalizeBoundsQ99, standardizeEpisode } from '../data/rlds/index.js';
import { publishChunksAtomic } from '../formats/fileio.js';
import { type FrameOptions, episodeViews, sampleFrame } from '../model/vla/rlds-export.js';
import type { RldsVlaData } from '../model/vla/rlds-source.js';
import { type DataPageEpisode, dataPageHtml } from '../report/data-page.js';

const STATE_KEY = 'steps/observation/state', ACTION_KEY = 'steps/action', LANGUAGE_KEY = 'steps/language_instruction';

/** `count` sample indices spread evenly over [first, end) (all of them when fewer). */
export function spreadSamples(first: number, end: number, count: number): number[] {
  const n = end - first;
  if (n <= count) return Array.from({ length: n }, (_, k) => first + k);
  const out = new Set<number>();
  for (let k = 0; k < count; k++) out.add(first + Math.round((k * (n - 1)) / (count - 1)));
  return [...out];
}

export interface DataPageOptions extends FrameOptions {
  episodes?: number;
  frames?: number;
  about: string[];
}

export async function writeDataPage(data: RldsVlaData, path: string, o: DataPageOptions): Promise<{ path: string; episodes: number; images: number }> {
  const s = data.samples, wantEpisodes = o.episodes ?? 3, wantFrames = o.frames ?? 6;
  const episodes: DataPageEpisode[] = [];
  let images = 0;
  for (let i = 0; i < s.size && episodes.length < wantEpisodes;) {
    const e = s.episode[i]!;
    let end = i;
    while (end < s.size && s.episode[end] === e) end++;
    const { views, episode } = await episodeViews(data, e, o.views);
    const frames = [];
    for (const n of spreadSamples(i, end, wantFrames)) {
      const px = await sampleFrame(data, views, n, o), plane = o.imageSize * o.imageSize * 3;
      const urls = [];
      for (let v = 0; v < o.views; v++) urls.push(await pngDataUrl(px.subarray(v * plane, (v + 1) * plane), o.imageSize, o.imageSize));
      images += urls.length;
      frames.push({ step: s.t[n]!, sample: n, views: urls });
    }
    const state = episode.features.get(STATE_KEY) as Float32Array, action = episode.features.get(ACTION_KEY) as Float32Array;
    const std = standardizeEpisode(LIBERO, {
      steps: episode.steps, state, stateDim: state.length / episode.steps, action, actionDim: action.length / episode.steps,
      language: episode.features.get(LANGUAGE_KEY) as string[],
    }, e);
    const actions = normalizeBoundsQ99(Float32Array.from(std.action), std.actionDim, s.statistics.action, s.statistics.action.mask);
    const place = data.places[e]!;
    episodes.push({
      episode: e, instruction: s.instructions[s.task[i]!]!, steps: episode.steps, where: `${place.shard}, record ${place.record}`,
      frames, actions, actionDims: std.actionDim,
    });
    i = end;
  }
  const html = await dataPageHtml({
    title: `${data.dataset.name} ${data.dataset.version}: what the model sees`,
    generated: new Date().toISOString(),
    about: o.about,
    viewNames: data.imageKeys.slice(0, o.views),
    imageSize: o.imageSize,
    pixels: o.augment ? `decoded, resized and augmented as in training (seed ${o.seed}; each sample's draw as --export writes it)` : 'decoded and resized, no augmentation',
    actionsAxis: 'normalised action',
    actionsNote: 'each step\'s action after LIBERO\'s transform, BOUNDS_Q99-normalised with the statistics above (the gripper, the last dim, is not normalised: 1 open, 0 closed)',
    episodes,
  });
  await publishChunksAtomic(path, [new TextEncoder().encode(html)]);
  return { path, episodes: episodes.length, images };
}
