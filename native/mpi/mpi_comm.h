// The few MPI collectives data-parallel training needs (README "Multi-process training"),
// behind one small interface so that nothing else includes <mpi.h>. Compiled with MPI when
// CMake finds an implementation (CRAFTGRAD_MPI=AUTO|ON|OFF); otherwise every call but
// compiled() throws MpiError saying this build has none.
//
// Only the JS thread calls these (MPI_THREAD_FUNNELED). Errors in MPI itself keep MPI's
// default handler, MPI_ERRORS_ARE_FATAL: a failed or dead peer ends the whole job (the
// launcher kills every rank) instead of leaving the others blocked in a collective.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/backend_error.h"
#include "../core/segments.h"

namespace craftgrad {
namespace mpi {

// Reaches JS as an Error with code ERR_CRAFTGRAD_MPI (native/napi/arg_error.cc).
struct MpiError : BackendError {
  explicit MpiError(const std::string& msg) : BackendError(msg, "ERR_CRAFTGRAD_MPI") {}
};

// True when this build links an MPI implementation.
bool compiled();
// The implementation's name and version (MPI_Get_library_version, first line), or "".
std::string libraryVersion();

// MPI_Init_thread once per process (a second call is a no-op; after finalize() it throws).
void init();
bool initialized();
bool finalized();
int rank();
int size();

// Sums `data` (n floats, the same n on every rank) across ranks, in rank order, so that
// every rank ends with bit-identical sums whatever the network did: the n floats are cut
// into size() fixed contiguous segments, rank r receives every rank's copy of segment r
// (all-to-all) and adds them in rank order 0, 1, ..., N-1, then every rank gathers every
// segment (all-gather). Throws MpiError, on every rank, when the ranks' n differ.
void sumInRankOrder(float* data, int64_t n);
// sumInRankOrder's segments: core/segments.h, shared with the NCCL communicator.
using craftgrad::segmentStart;
// The two halves of sumInRankOrder, for the sharded (ZeRO-1) step:
// reduceScatterInRankOrder leaves in this rank's segment of `data` the rank-order sum of
// every rank's copy of it (the same bits sumInRankOrder gives there); the rest of `data` is
// left as it was. allgatherSegments copies every rank's segment of `data` into every rank's
// `data`. Both throw MpiError, on every rank, when the ranks' n differ.
void reduceScatterInRankOrder(float* data, int64_t n);
void allgatherSegments(float* data, int64_t n);
// Every rank's segment of n floats (`segment`: this rank's segmentLength floats) into
// root's `full` (n floats; ignored elsewhere). Throws MpiError on every rank when the ranks'
// n differ or a rank's segment has the wrong length.
void gatherSegments(const float* segment, int64_t segmentLength, float* full, int64_t n, int root);
// MPI_Allreduce(MPI_SUM) of the same floats, for comparison (bench/mpi-reduce.js): its
// order of summation is the implementation's.
void allreduceSum(float* data, int64_t n);
// Copies root's `bytes` bytes into every rank's buffer. Throws MpiError, on every rank,
// when a rank's byte count differs from root's.
void broadcast(void* data, int64_t bytes, int root);
// Every rank's k doubles, rank by rank (out: size()·k). Throws on every rank when k differs.
std::vector<double> allgather(const double* values, int64_t k);
void barrier();
// MPI_Abort(MPI_COMM_WORLD, code): the launcher ends every rank. Does not return.
[[noreturn]] void abort(int code);
void finalize();

}  // namespace mpi
}  // namespace craftgrad
