// The CUDA backend's Communicator (core/communicator.h) on NCCL, which is loaded at run
// time (native/nccl). Internal to native/cuda.
#pragma once
#include <memory>

#include "../core/communicator.h"

namespace craftgrad {
namespace cuda {

struct DeviceContext;

// Joins the group `init` names on `device` (ncclCommInitRank: collective). Throws NcclError
// when NCCL cannot be loaded or the group cannot be formed.
std::unique_ptr<Communicator> makeNcclCommunicator(int device, const CommunicatorInit& init);

// rows: p rows of `stride` floats (row `self` unused: it is `out`); out[i] = the rows'
// elements i added in rank order (collective_kernels.cu).
void launchSumRowsInRankOrder(DeviceContext& ctx, const float* rows, int64_t stride, int p, int self, float* out, int64_t n);

}  // namespace cuda
}  // namespace craftgrad
