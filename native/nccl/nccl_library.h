// libnccl, opened at run time (dlopen) the first time it is asked for, so that a build
// needs no NCCL and a machine without it still runs everything else (README "Multi-process
// training"). Where it is looked for, in order: the file CRAFTGRAD_NCCL_LIBRARY names (a
// path: then nothing else is tried), libnccl.so.2, libnccl.so (the loader's search path:
// LD_LIBRARY_PATH, the ld.so cache).
#pragma once
#include <string>

#include "../core/backend_error.h"
#include "nccl_abi.h"

namespace craftgrad {
namespace nccl {

// Reaches JS as an Error with code ERR_CRAFTGRAD_NCCL (native/napi/arg_error.cc).
struct NcclError : BackendError {
  explicit NcclError(const std::string& msg) : BackendError(msg, "ERR_CRAFTGRAD_NCCL") {}
};

// The functions craftgrad calls, resolved once.
struct Library {
  std::string path;     // the file dlopen loaded (dlinfo's name)
  int versionCode = 0;  // ncclGetVersion's code: 2.x.y is 20000 + 100·x + y since 2.9 (x·100 + ... before)
  ncclGetVersion_fn getVersion = nullptr;
  ncclGetUniqueId_fn getUniqueId = nullptr;
  ncclCommInitRank_fn commInitRank = nullptr;
  ncclCommDestroy_fn commDestroy = nullptr;
  ncclCommAbort_fn commAbort = nullptr;
  ncclCommGetAsyncError_fn commGetAsyncError = nullptr;
  ncclGetErrorString_fn getErrorString = nullptr;
  ncclGroupStart_fn groupStart = nullptr;
  ncclGroupEnd_fn groupEnd = nullptr;
  ncclSend_fn send = nullptr;
  ncclRecv_fn recv = nullptr;

  // "2.21.5" from versionCode.
  std::string version() const;
  // Throws NcclError naming the call and NCCL's text for `r` unless r is ncclSuccess.
  void check(ncclResult_t r, const char* call) const;
};

// The library, loaded on first call; throws NcclError saying what was tried and why it
// failed (not found, a missing symbol, a version older than 2.7). Thread-safe; a failure is
// remembered (the same error every call: the environment does not change mid-process).
const Library& library();
// Whether library() would succeed, and if not, its message (for backendInfo()).
bool available(std::string* why);

}  // namespace nccl
}  // namespace craftgrad
