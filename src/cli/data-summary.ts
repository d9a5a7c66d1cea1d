// What `craftgrad data DIR` prints: the dataset, its episodes and steps, the samples training
// takes from them, the tasks (instructions with their episode and sample counts) and the
// action and proprio statistics the samples are normalised with.
import type { ArrayStatistics } from '../data/rlds/index.js';
import type { RldsVlaData } from '../model/vla/rlds-source.js';

export interface TaskCount {
  instruction: string;
  episodes: number;
  samples: number;
}

/** Per task (the episode's first instruction), in order of first appearance: its episodes and samples. */
export function taskCounts(data: RldsVlaData): TaskCount[] {
  const s = data.samples;
  const episodes = new Map<number, Set<number>>(), samples = new Map<number, number>();
  for (let i = 0; i < s.size; i++) {
    const k = s.task[i]!;
    if (!episodes.has(k)) episodes.set(k, new Set());
    episodes.get(k)!.add(s.episode[i]!);
    samples.set(k, (samples.get(k) ?? 0) + 1);
  }
  return [...episodes.keys()].sort((a, b) => a - b).map((k) => ({ instruction: s.instructions[k]!, episodes: episodes.get(k)!.size, samples: samples.get(k)! }));
}

function num(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(3) : v.toFixed(4);
}

/** Columns right-aligned, the last (text) one left-aligned. */
function table(header: string[], rows: string[][], indent = '  '): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => indent + cells.map((x, c) => (c === cells.length - 1 ? x : x.padStart(widths[c]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

/** The per-dim table of one array's statistics. */
export function statisticsTable(st: ArrayStatistics): string[] {
  const keys = ['q01', 'q99', 'mean', 'std', 'min', 'max'] as const;
  const rows = st.q01.map((_, d) => [String(d), ...keys.map((k) => (st[k].length > d ? num(st[k][d]!) : '-')), st.mask ? (st.mask[d] ? '' : 'not normalised') : '']);
  return table(['dim', ...keys, ''], rows);
}

export function dataSummary(data: RldsVlaData, o: { split: string; statistics: string }): string {
  const s = data.samples, steps = data.places.map((p) => p.steps), total = steps.reduce((a, b) => a + b, 0);
  const lines = [
    `${data.dataset.name} ${data.dataset.version} (${data.dataset.dir}), split ${o.split}`,
    `episodes: ${s.episodes}${s.skippedUnlabeled + s.skippedShort > 0 ? ` (${s.skippedUnlabeled} without an instruction and ${s.skippedShort} shorter than a chunk give no sample)` : ''}`,
    `steps: ${total} (per episode: min ${Math.min(...steps)}, mean ${(total / steps.length).toFixed(1)}, max ${Math.max(...steps)})`,
    `samples: ${s.size} (one per step that starts a chunk of ${s.chunk} actions)`,
    `camera views: ${data.imageKeys.join(', ')}`,
  ];
  const tasks = taskCounts(data);
  lines.push(`tasks: ${tasks.length}`);
  lines.push(...table(['episodes', 'samples', 'instruction'], tasks.map((t) => [String(t.episodes), String(t.samples), JSON.stringify(t.instruction)])));
  const st = s.statistics;
  lines.push(`statistics: ${o.statistics} (${st.num_transitions >= 0 ? `${st.num_transitions} transitions` : 'transitions not given'}, ${st.num_trajectories >= 0 ? `${st.num_trajectories} trajectories` : 'trajectories not given'}); BOUNDS_Q99 normalisation`);
  lines.push(`action (${s.actionDim} dims, after the LIBERO transform):`, ...statisticsTable(st.action));
  lines.push(`proprio (${s.proprioDim} dims):`, ...statisticsTable(st.proprio));
  return lines.join('\n');
}
