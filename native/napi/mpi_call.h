// binding.mpi: the MPI collectives of native/mpi, for src/parallel (README "Multi-process
// training"). Every argument is checked here; a bad one throws a TypeError/RangeError and
// never reaches MPI (so never aborts the job).
#pragma once
#include <napi.h>

namespace craftgrad {

void registerMpiExports(Napi::Env env, Napi::Object exports);
// backendInfo().mpi: { compiled, library, initialized, rank?, size? }.
Napi::Object mpiInfo(Napi::Env env);

}  // namespace craftgrad
