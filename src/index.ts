// craftgrad's public API.
export { surgery, surgeryAsync, surgeryFlat, surgeryFlatAsync } from './surgery.js';
export type { SurgeryOptions, SurgeryResult } from './surgery.js';
export { GradSet } from './gradset.js';
export type { GradSetOptions } from './gradset.js';
export type { DeviceName, DeviceSpec } from './device.js';
export { backendInfo, setThreads, version } from './backend.js';
export type { BackendInfo } from './backend.js';
