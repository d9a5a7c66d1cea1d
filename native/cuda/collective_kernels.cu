// The device half of the NCCL communicator's rank-order reduce-scatter
// (nccl_communicator.cc): NCCL moves every rank's copy of this rank's segment into rows of
// a receive buffer; this kernel adds the rows in rank order 0, 1, ..., p-1, each addition
// an IEEE float add (__fadd_rn), so the result has the bits of native/mpi's host sum.
#include <cuda_runtime.h>

#include <algorithm>

#include "cuda_internal.h"
#include "nccl_communicator.h"

namespace craftgrad {
namespace cuda {

namespace {

constexpr int kSumThreads = 256;

// out[i] = row_0[i] + row_1[i] + ... + row_{p-1}[i], where row r is rows + r·stride except
// row `self`, which is `out` itself (this rank's own copy never leaves it). Each thread
// reads its element of every row before it writes out[i], so out may be row `self`.
__global__ void __launch_bounds__(kSumThreads) sumRowsInRankOrderKernel(const float* rows, long long stride, int p, int self,
                                                                        float* out, long long n) {
  const long long step = static_cast<long long>(gridDim.x) * blockDim.x;
  for (long long i = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    float s = self == 0 ? out[i] : rows[i];
    for (int r = 1; r < p; ++r) s = __fadd_rn(s, r == self ? out[i] : rows[r * stride + i]);
    out[i] = s;
  }
}

}  // namespace

void launchSumRowsInRankOrder(DeviceContext& ctx, const float* rows, int64_t stride, int p, int self, float* out, int64_t n) {
  if (n <= 0) return;
  const long long blocks = std::min<long long>((n + kSumThreads - 1) / kSumThreads, static_cast<long long>(ctx.multiprocessors > 0 ? ctx.multiprocessors : 1) * 8);
  sumRowsInRankOrderKernel<<<static_cast<unsigned>(blocks), kSumThreads, 0, ctx.stream>>>(rows, stride, p, self, out, n);
  CG_CUDA(ctx.device, cudaGetLastError());
}

}  // namespace cuda
}  // namespace craftgrad
