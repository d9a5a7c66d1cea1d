// libcublasLt, opened at run time (dlopen) the first time it is asked for, so that a build
// needs no CUDA math library and a machine without one still runs everything else (the
// products then run on the hand-written kernels: native/cuda/gemm_lt.h). Where it is
// looked for, in order:
//   1. the file CRAFTGRAD_CUBLASLT_LIBRARY names (then nothing else is tried);
//   2. libcublasLt.so.13, then libcublasLt.so.12, on the loader's search path
//      (LD_LIBRARY_PATH, the ld.so cache);
//   3. /usr/local/cuda/lib64/libcublasLt.so.13, then .so.12;
//   4. PyTorch's nvidia wheels: <prefix>/lib/python3.*/{site,dist}-packages/nvidia/
//      {cu13/lib,cublas/lib}/libcublasLt.so.1[32], for the prefixes of VIRTUAL_ENV,
//      CONDA_PREFIX, each PATH folder ending in /bin, ~/.local, /usr/local and /usr
//      (a glob each: no Python is started).
#pragma once
#include <string>

#include "../core/backend_error.h"
#include "cublaslt_abi.h"

namespace craftgrad {
namespace cublaslt {

// Reaches JS as an Error with code ERR_CRAFTGRAD_CUBLASLT (native/napi/arg_error.cc).
struct CublasLtError : BackendError {
  explicit CublasLtError(const std::string& msg) : BackendError(msg, "ERR_CRAFTGRAD_CUBLASLT") {}
};

// The oldest cuBLASLt accepted: 12.0 (cublasLtGetVersion's code major·10000 + minor·100 + patch).
constexpr size_t kOldestVersionCode = 120000;

// The functions craftgrad calls, resolved once.
struct Library {
  std::string path;         // the file dlopen loaded (dlinfo's name)
  size_t versionCode = 0;   // cublasLtGetVersion()
  cublasLtCreate_fn create = nullptr;
  cublasLtDestroy_fn destroy = nullptr;
  cublasLtGetVersion_fn getVersion = nullptr;
  cublasLtGetStatusName_fn getStatusName = nullptr;      // optional
  cublasLtGetStatusString_fn getStatusString = nullptr;  // optional
  cublasLtMatmulDescCreate_fn matmulDescCreate = nullptr;
  cublasLtMatmulDescDestroy_fn matmulDescDestroy = nullptr;
  cublasLtMatmulDescSetAttribute_fn matmulDescSetAttribute = nullptr;
  cublasLtMatrixLayoutCreate_fn matrixLayoutCreate = nullptr;
  cublasLtMatrixLayoutDestroy_fn matrixLayoutDestroy = nullptr;
  cublasLtMatmulPreferenceCreate_fn preferenceCreate = nullptr;
  cublasLtMatmulPreferenceDestroy_fn preferenceDestroy = nullptr;
  cublasLtMatmulPreferenceSetAttribute_fn preferenceSetAttribute = nullptr;
  cublasLtMatmulAlgoGetHeuristic_fn algoGetHeuristic = nullptr;
  cublasLtMatmulAlgoConfigGetAttribute_fn algoConfigGetAttribute = nullptr;
  cublasLtMatmul_fn matmul = nullptr;

  // "13.0.2" from versionCode.
  std::string version() const;
  // Throws CublasLtError naming the call and cuBLASLt's words for `s` unless s is success.
  void check(cublasStatus_t s, const char* call) const;
};

// The library, loaded on first call; throws CublasLtError saying what was tried and why it
// failed (not found, a missing symbol, a version older than 12). Thread-safe; a failure is
// remembered (the same error every call: the environment does not change mid-process).
const Library& library();
// Whether library() would succeed, and if not, its message (for backendInfo()).
bool available(std::string* why);

}  // namespace cublaslt
}  // namespace craftgrad
