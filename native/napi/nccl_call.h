// binding.nccl: NCCL, loaded at run time (native/nccl), and the communicator a device
// backend makes from it (core/communicator.h), for src/parallel (README "Multi-process
// training"). Arguments are checked here; NCCL's own failures throw ERR_CRAFTGRAD_NCCL.
//
//   nccl.uniqueId() -> Uint8Array(128)          rank 0 makes it, MPI broadcasts it
//   new nccl.Communicator({ id, rank, size, device: 'cuda:N' })   collective
//   .reduceScatterInRankOrder(sets) .allgatherSegments(sets)       sets: TensorSet[] on device
//   .abort() .rank .size .device
#pragma once
#include <napi.h>

namespace craftgrad {

void registerNcclExports(Napi::Env env, Napi::Object exports);
// backendInfo().nccl: { available, library?, version?, reason? }.
Napi::Object ncclInfo(Napi::Env env);

}  // namespace craftgrad
