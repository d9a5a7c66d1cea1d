// A FramePool worker (frame-pool.ts): runs prepareNormalizedFrame on each job and sends the
// pixels back (transferred), or the error's message. The decode runs on this thread (the
// addon's decoder is synchronous; sharp's fallback decode overlaps on libuv's threads).
import { parentPort, workerData } from 'node:worker_threads';
import { prepareNormalizedFrame, type FrameJob, type FrameNormalization } from './frame-pool.js';

const norm = (workerData as { normalization: FrameNormalization }).normalization;
const port = parentPort!;

port.on('message', (m: { id: number; views: Uint8Array[]; job: FrameJob }) => {
  prepareNormalizedFrame(m.views, m.job, norm).then(
    (pixels) => port.postMessage({ id: m.id, pixels }, [pixels.buffer as ArrayBuffer]),
    (e: unknown) => port.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) }),
  );
});
