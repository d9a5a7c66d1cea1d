// Multi-process (data-parallel) training over MPI (README "Multi-process training").
export { World } from './world.js';
export { detectLauncher, dataParallelDesign, type DataParallelDesign } from './launcher.js';
export { DataParallelSource } from './data-parallel-source.js';
export { FollowerRun } from './follower-run.js';
export { startRanks, checkSameWeights, agreedStop } from './sync.js';
export { DeviceGroup, deviceReduceMode, type DeviceReduce } from './device-group.js';
export { HostRelay } from './host-relay.js';
export type { DeviceReducer } from './device-reducer.js';
