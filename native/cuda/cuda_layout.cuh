// Internal to native/cuda (included by .cu files only): the device tables of a layout
// (the chunk -> tensor table, per-chunk partial sums, per-tensor statistics and
// coefficients) and the Layout that owns them. Shared by the surgery (surgery_kernels.cu)
// and the optimizer step (adamw_kernels.cu), which walk the same chunk table.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "cuda_internal.h"

namespace craftgrad {
namespace cuda {

struct TensorDesc {
  long long offset;      // first element in the buffers
  long long n;
  long long firstChunk;  // global index of its first chunk
  long long nChunks;
};

struct DevStats {
  double dot, rr, aa, coef, outSq;
  int conflict, nonFinite;
};

struct ChunkPart {
  double dot, rr, aa, sq;
  int flag, pad;
};

// Several CTAs share a chunk (surgery_kernels.cu): each writes the partial sums of its
// element blocks; the chunk's last CTA (ticket chunkCount*) adds the chunk's blocks in
// order, and the tensor's last chunk (ticket count*) adds its chunks in order.
struct Tables {
  const int* chunkTensor;     // numChunks: the chunk -> tensor table
  const TensorDesc* tensors;  // k
  ChunkPart* chunks;          // numChunks partial sums
  ChunkPart* blocks;          // numChunks * (kChunk / kBlock) partial sums of element blocks
  DevStats* stats;            // k
  float* coef;                // k
  unsigned* count1;           // k, chunks of pass 1 done per tensor
  unsigned* count2;           // k, chunks of pass 2 done
  unsigned* chunkCount1;      // numChunks, CTAs of pass 1 done per chunk
  unsigned* chunkCount2;      // numChunks, CTAs of pass 2 done (stats and every counter are zeroed per call)
};

// Global chunk gc (an entry of the chunk -> tensor table): its tensor, first element, length.
struct ChunkWork {
  int tensor;
  long long start;  // element offset in the buffers
  long long len;    // elements in the chunk (1..kChunk)
};

__device__ __forceinline__ ChunkWork chunkWork(const Tables& T, long long gc) {
  ChunkWork w;
  w.tensor = T.chunkTensor[gc];
  const TensorDesc td = T.tensors[w.tensor];
  const long long c = gc - td.firstChunk;
  w.start = td.offset + c * kChunk;
  w.len = min(static_cast<long long>(kChunk), td.n - c * kChunk);
  return w;
}

// ---------------------------------------------------------------- layout

class Layout {
 public:
  int device = 0;
  std::vector<int64_t> sizes;
  int64_t total = 0, numChunks = 0;
  std::vector<std::pair<int64_t, int64_t>> groups;  // chunk ranges
  void* block = nullptr;                             // all device tables and scratch
  size_t resetBytes = 0;                             // stats + counters, zeroed per call
  void* resetBase = nullptr;
  Tables tables{};
  DevStats* pinned = nullptr;    // k statistics, copied back once per call
  float* pinnedCoef = nullptr;   // k coefficients staged for the fused optimizer step (same allocation)
  std::mutex mu;

  ~Layout() {  // on the release thread: a layout may die on the JS main thread
    releaseDevice(device, block);
    releasePinned(device, pinned);
  }
};

}  // namespace cuda
}  // namespace craftgrad
