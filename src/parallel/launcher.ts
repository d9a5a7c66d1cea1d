// Whether this process was started by an MPI launcher (mpirun/mpiexec, srun with PMI/PMIx),
// from the environment the launchers set. Without one, craftgrad never initialises MPI and
// a run is exactly the single-process run.

/** The variables (in this order) that say a launcher started us, and the world size when they carry it. */
const SIZE_VARIABLES = ['OMPI_COMM_WORLD_SIZE', 'PMI_SIZE', 'PMIX_SIZE', 'MPI_LOCALNRANKS'] as const;
const RANK_VARIABLES = ['OMPI_COMM_WORLD_RANK', 'PMI_RANK', 'PMIX_RANK'] as const;

export interface LauncherEnvironment {
  /** The variable that gave it away, e.g. OMPI_COMM_WORLD_SIZE=2. */
  evidence: string;
}

/** The launcher's trace in `env`, or undefined when this is a plain process. */
export function detectLauncher(env: NodeJS.ProcessEnv = process.env): LauncherEnvironment | undefined {
  for (const name of [...SIZE_VARIABLES, ...RANK_VARIABLES]) {
    const v = env[name];
    if (v !== undefined && v !== '') return { evidence: `${name}=${v}` };
  }
  return undefined;
}

/** The variables launchers set to the number of ranks on this machine. */
const LOCAL_SIZE_VARIABLES = ['OMPI_COMM_WORLD_LOCAL_SIZE', 'MPI_LOCALNRANKS', 'PMIX_LOCAL_SIZE', 'SLURM_NTASKS_PER_NODE'] as const;

/** How many ranks the launcher started on this machine (1 when it does not say). */
export function localRankCount(env: NodeJS.ProcessEnv = process.env): number {
  for (const name of LOCAL_SIZE_VARIABLES) {
    const n = Number(env[name]);
    if (Number.isSafeInteger(n) && n >= 1) return n;
  }
  return 1;
}

/**
 * The CPU threads a rank uses when neither --threads nor CRAFTGRAD_THREADS says: the cores
 * shared out among the ranks on this machine (as torchrun sets OMP_NUM_THREADS), since N
 * ranks of all-cores threads oversubscribe the machine N times over.
 */
export function threadsPerRank(cores: number, env: NodeJS.ProcessEnv = process.env): number {
  return Math.max(1, Math.floor(cores / localRankCount(env)));
}

/** The data-parallel designs (docs/ARCHITECTURE.md §7). */
export type DataParallelDesign = 'sharded' | 'plain';

/**
 * The design a multi-process run uses: CRAFTGRAD_DATA_PARALLEL=sharded (the default: the
 * ZeRO-1 step, optimizer state divided over the ranks) or plain (both gradient sets summed
 * on every rank, every rank runs the whole step). Anything else is refused.
 */
export function dataParallelDesign(v: string | undefined = process.env.CRAFTGRAD_DATA_PARALLEL): DataParallelDesign {
  if (v === undefined || v === '' || v === 'sharded') return 'sharded';
  if (v === 'plain') return 'plain';
  throw new RangeError(`CRAFTGRAD_DATA_PARALLEL must be 'sharded' or 'plain', got ${JSON.stringify(v)}`);
}
