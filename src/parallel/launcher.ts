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
