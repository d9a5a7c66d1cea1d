// A test-only stand-in for libnccl.so.2 (README "NCCL stand-in"): the NCCL functions that
// craftgrad opens with dlopen (native/nccl/nccl_abi.h), implemented over MPI, so that the
// NCCL code path runs under mpirun on the CUDA emulator, where device memory is host memory.
//
// Its one assumption: the stream argument is ignored and the bytes move synchronously in
// the outermost ncclGroupEnd. The real NCCL only enqueues the transfers on the stream and
// returns. This is exact for craftgrad because its collectives wait for the stream's queued
// work before they call NCCL, and enqueue whatever reads the received data after
// ncclGroupEnd (native/cuda/nccl_communicator.cc).
//
// MPI: the process has called MPI_Init_thread (MPI_THREAD_FUNNELED) before it loads this
// library; it never initialises or finalizes MPI itself, and every call that needs MPI
// returns ncclInvalidUsage when MPI is not initialised or already finalized.
//
// Failure injection for craftgrad's tests (every rank sees the same environment):
//   CGEMU_NCCL_FAIL_INIT=1           ncclCommInitRank returns ncclSystemError;
//   CGEMU_NCCL_ASYNC_ERROR_AFTER=k   after k completed ncclGroupEnd calls on a
//                                    communicator, it is in error: ncclRemoteError (sticky).
#include <mpi.h>
#include <sys/random.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "nccl_abi.h"

#define CGEMU_NCCL_EXPORT extern "C" __attribute__((visibility("default")))

struct ncclComm {
  MPI_Comm mpi;
  int rank, size;
  ncclResult_t asyncError;  // sticky, as NCCL's
  long groupsDone;          // completed ncclGroupEnd calls that moved data on this communicator
  long errorAfter;          // CGEMU_NCCL_ASYNC_ERROR_AFTER, or -1
};

namespace {

const char kMagic[] = "cgemu-nccl";  // with its '\0': 11 bytes, then 16 random ones

bool mpiUsable() {
  int initialised = 0, finalized = 0;
  MPI_Initialized(&initialised);
  MPI_Finalized(&finalized);
  return initialised && !finalized;
}

// The group state is per thread, as NCCL's.
struct Op {
  bool send;
  char* buf;
  size_t count;
  int peer;
  ncclComm* comm;
};
thread_local int groupDepth = 0;
thread_local std::vector<Op> pending;
thread_local ncclResult_t groupError = ncclSuccess;  // the first failed call inside the group

ncclResult_t record(bool send, const void* buf, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm);

}  // namespace

CGEMU_NCCL_EXPORT ncclResult_t ncclGetVersion(int* version) {
  if (version == nullptr) return ncclInvalidArgument;
  // The NCCL 2.7 API level (ncclSend/ncclRecv appeared in 2.7), written as NCCL >= 2.9
  // encodes versions (X*10000 + Y*100 + Z): craftgrad's loader needs at least 2.7.
  *version = 20700;
  return ncclSuccess;
}

CGEMU_NCCL_EXPORT const char* ncclGetErrorString(ncclResult_t result) {
  // NCCL's own texts (src/misc/argcheck.cc and init.cc of NCCL 2.x).
  switch (result) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
  }
}

CGEMU_NCCL_EXPORT ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId) {
  if (uniqueId == nullptr) return ncclInvalidArgument;
  std::memset(uniqueId->internal, 0, sizeof uniqueId->internal);
  std::memcpy(uniqueId->internal, kMagic, sizeof kMagic);
  char* random = uniqueId->internal + sizeof kMagic;
  if (getrandom(random, 16, 0) != 16) return ncclSystemError;
  return ncclSuccess;
}

// Collective over MPI_COMM_WORLD (MPI_Comm_split): every world rank must call it, which
// craftgrad's use does (all ranks form one communicator). Argument errors are found before
// the split, so a rank that makes one leaves its peers waiting, as NCCL's bootstrap would.
CGEMU_NCCL_EXPORT ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank) {
  if (comm == nullptr) return ncclInvalidArgument;
  *comm = nullptr;
  if (std::memcmp(commId.internal, kMagic, sizeof kMagic) != 0) return ncclInvalidArgument;
  if (nranks <= 0 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
  if (!mpiUsable()) return ncclInvalidUsage;
  // Every rank sees the same environment, so every rank fails here, before any collective:
  // no peer is left waiting in the split.
  const char* failInit = std::getenv("CGEMU_NCCL_FAIL_INIT");
  if (failInit != nullptr && std::strcmp(failInit, "1") == 0) return ncclSystemError;
  long errorAfter = -1;
  if (const char* v = std::getenv("CGEMU_NCCL_ASYNC_ERROR_AFTER"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    errorAfter = std::strtol(v, &end, 10);
    if (*end != '\0' || errorAfter < 0) {
      std::fprintf(stderr, "cgemu-nccl: CGEMU_NCCL_ASYNC_ERROR_AFTER must be a count >= 0, got \"%s\"\n", v);
      return ncclInvalidUsage;
    }
  }
  // The color: a non-negative hash (FNV-1a) of the id, so the ranks given one id meet.
  unsigned hash = 2166136261u;
  for (char c : commId.internal) hash = (hash ^ static_cast<unsigned char>(c)) * 16777619u;
  MPI_Comm mpi = MPI_COMM_NULL;
  if (MPI_Comm_split(MPI_COMM_WORLD, static_cast<int>(hash & 0x7fffffffu), rank, &mpi) != MPI_SUCCESS) return ncclSystemError;
  int size = 0, myRank = -1;
  MPI_Comm_size(mpi, &size);
  MPI_Comm_rank(mpi, &myRank);
  if (size != nranks || myRank != rank) {  // ranks that disagree about nranks, or a rank given twice
    MPI_Comm_free(&mpi);
    return ncclInvalidUsage;
  }
  MPI_Comm_set_errhandler(mpi, MPI_ERRORS_RETURN);  // an MPI error becomes ncclSystemError, not an abort
  *comm = new ncclComm{mpi, rank, size, errorAfter == 0 ? ncclRemoteError : ncclSuccess, 0, errorAfter};
  return ncclSuccess;
}

CGEMU_NCCL_EXPORT ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;  // as NCCL
  const bool usable = mpiUsable();
  if (usable) MPI_Comm_free(&comm->mpi);
  delete comm;
  return usable ? ncclSuccess : ncclInvalidUsage;
}

// NCCL's abort stops work in flight; here none is ever in flight (ncclGroupEnd is
// synchronous), so it is ncclCommDestroy. Open MPI's MPI_Comm_free does not wait for peers.
CGEMU_NCCL_EXPORT ncclResult_t ncclCommAbort(ncclComm_t comm) { return ncclCommDestroy(comm); }

CGEMU_NCCL_EXPORT ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
  if (comm == nullptr || asyncError == nullptr) return ncclInvalidArgument;
  *asyncError = comm->asyncError;
  return ncclSuccess;
}

CGEMU_NCCL_EXPORT ncclResult_t ncclGroupStart() {
  ++groupDepth;
  return ncclSuccess;
}

// The outermost ncclGroupEnd moves the bytes: MPI_Irecv for every recorded receive, then
// MPI_Isend for every send, then MPI_Waitall. Sends and receives between two ranks match in
// the order they were issued (NCCL's rule), which MPI's non-overtaking order on one tag and
// communicator gives; posting the receives first lets a rank send to itself.
CGEMU_NCCL_EXPORT ncclResult_t ncclGroupEnd() {
  if (groupDepth == 0) return ncclInvalidUsage;
  if (--groupDepth > 0) return ncclSuccess;
  std::vector<Op> ops;
  ops.swap(pending);
  const ncclResult_t failed = groupError;
  groupError = ncclSuccess;
  if (failed != ncclSuccess) return failed;  // as NCCL: a group in which a call failed does nothing
  if (ops.empty()) return ncclSuccess;
  if (!mpiUsable()) return ncclInvalidUsage;
  std::vector<ncclComm*> comms;
  for (const Op& op : ops) {
    if (op.comm->asyncError != ncclSuccess) return op.comm->asyncError;
    bool seen = false;
    for (ncclComm* c : comms) seen = seen || c == op.comm;
    if (!seen) comms.push_back(op.comm);
  }
  std::vector<MPI_Request> requests;
  int rc = MPI_SUCCESS;
  for (int pass = 0; pass < 2 && rc == MPI_SUCCESS; ++pass) {
    for (const Op& op : ops) {
      if (op.send != (pass == 1)) continue;
      // MPI counts are int: a count over INT_MAX goes as several messages, in order.
      for (size_t at = 0; at < op.count && rc == MPI_SUCCESS; at += INT_MAX) {
        const int n = static_cast<int>(op.count - at < static_cast<size_t>(INT_MAX) ? op.count - at : INT_MAX);
        char* p = op.buf + at * sizeof(float);
        MPI_Request r = MPI_REQUEST_NULL;
        rc = op.send ? MPI_Isend(p, n, MPI_FLOAT, op.peer, 0, op.comm->mpi, &r) : MPI_Irecv(p, n, MPI_FLOAT, op.peer, 0, op.comm->mpi, &r);
        if (rc == MPI_SUCCESS) requests.push_back(r);
      }
    }
  }
  if (rc == MPI_SUCCESS) {
    rc = MPI_Waitall(static_cast<int>(requests.size()), requests.data(), MPI_STATUSES_IGNORE);
  } else {
    for (MPI_Request& r : requests) MPI_Request_free(&r);  // a partly posted group: nothing waits for it
  }
  for (ncclComm* c : comms) {
    if (rc != MPI_SUCCESS) {
      c->asyncError = ncclSystemError;
    } else if (++c->groupsDone == c->errorAfter) {
      c->asyncError = ncclRemoteError;  // CGEMU_NCCL_ASYNC_ERROR_AFTER: this group was the last to move data
    }
  }
  return rc == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}

CGEMU_NCCL_EXPORT ncclResult_t ncclSend(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                                        ncclStream_t stream) {
  return record(true, sendbuff, count, datatype, peer, comm);
}

CGEMU_NCCL_EXPORT ncclResult_t ncclRecv(void* recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                                        ncclStream_t stream) {
  return record(false, recvbuff, count, datatype, peer, comm);
}

namespace {

ncclResult_t check(const void* buf, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm) {
  if (comm == nullptr || datatype != ncclFloat32) return ncclInvalidArgument;  // the only type craftgrad sends
  if (peer < 0 || peer >= comm->size || (buf == nullptr && count > 0)) return ncclInvalidArgument;
  if (!mpiUsable()) return ncclInvalidUsage;
  // As NCCL (ncclCommEnsureReady): a communicator in error refuses new work. craftgrad
  // learns of the injected error here: the emulator's stream is always idle when polled.
  return comm->asyncError;
}

// Inside a group a call is recorded; outside one it is a group of its own.
ncclResult_t record(bool send, const void* buf, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm) {
  const ncclResult_t r = check(buf, count, datatype, peer, comm);
  if (r != ncclSuccess) {
    if (groupDepth > 0 && groupError == ncclSuccess) groupError = r;  // fails the whole group, as NCCL
    return r;
  }
  if (count > 0) pending.push_back(Op{send, static_cast<char*>(const_cast<void*>(buf)), count, peer, comm});
  if (groupDepth > 0) return ncclSuccess;
  ncclGroupStart();
  return ncclGroupEnd();
}

}  // namespace

// The signatures are NCCL's, as craftgrad's loader calls them.
static_assert(std::is_same<decltype(&ncclGetVersion), ncclGetVersion_fn>::value, "ncclGetVersion");
static_assert(std::is_same<decltype(&ncclGetUniqueId), ncclGetUniqueId_fn>::value, "ncclGetUniqueId");
static_assert(std::is_same<decltype(&ncclCommInitRank), ncclCommInitRank_fn>::value, "ncclCommInitRank");
static_assert(std::is_same<decltype(&ncclCommDestroy), ncclCommDestroy_fn>::value, "ncclCommDestroy");
static_assert(std::is_same<decltype(&ncclCommAbort), ncclCommAbort_fn>::value, "ncclCommAbort");
static_assert(std::is_same<decltype(&ncclCommGetAsyncError), ncclCommGetAsyncError_fn>::value, "ncclCommGetAsyncError");
static_assert(std::is_same<decltype(&ncclGetErrorString), ncclGetErrorString_fn>::value, "ncclGetErrorString");
static_assert(std::is_same<decltype(&ncclGroupStart), ncclGroupStart_fn>::value, "ncclGroupStart");
static_assert(std::is_same<decltype(&ncclGroupEnd), ncclGroupEnd_fn>::value, "ncclGroupEnd");
static_assert(std::is_same<decltype(&ncclSend), ncclSend_fn>::value, "ncclSend");
static_assert(std::is_same<decltype(&ncclRecv), ncclRecv_fn>::value, "ncclRecv");
