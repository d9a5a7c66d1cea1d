// A test-only stand-in for libcublasLt.so.13 (README "cuBLASLt stand-in"): the cuBLASLt
// functions craftgrad opens with dlopen (native/cublaslt/cublaslt_abi.h), computed on the
// CPU, so that the bf16 product path (native/cuda/gemm_lt.cc) runs on the CUDA emulator,
// where device memory is host memory.
//
// Numerics: column-major operands as cuBLASLt's; A and B fp32 or bf16 (their bits widened
// exactly), C and D fp32, fp32 compute and scale. Each output is one fp32 accumulator over
// k = 0..K-1 in order (fmaf; a bf16 product is exact in fp32, so for bf16 inputs this is the
// same as rounding each sum), then alpha·acc, then + beta·C. A split-K algorithm (which the
// heuristic offers first unless the preference's reduction-scheme mask forbids it) adds
// its 4 partial sums at the end instead: other bits, as on a GPU, so a caller that took it
// would be caught by the exact comparisons of test/cublaslt-cuda.test.mjs.
//
// Streams: cublasLtMatmul queues its work on the stream through the emulator's stream head
// (include/cuda_runtime_api.h: cgemuStreamHead), so it runs in stream order after the
// kernels that wrote its operands, and its result is read only after a sync, as on a GPU.
//
// For craftgrad's tests:
//   CGEMU_CUBLASLT_VERSION=<code>   what cublasLtGetVersion returns (default 130000: 13.0.0)
//   CGEMU_CUBLASLT_FAIL=create|heuristic|noalgo|matmul   cublasLtCreate returns
//       NOT_INITIALIZED, cublasLtMatmulAlgoGetHeuristic NOT_SUPPORTED, or no algorithm, or
//       cublasLtMatmul EXECUTION_FAILED
//   CGEMU_CUBLASLT_LOG=<file>       one JSON line per create, heuristic and matmul call
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cublaslt_abi.h"

#define CGEMU_LT_EXPORT extern "C" __attribute__((visibility("default")))

struct cublasLtContext {
  unsigned magic;
};
struct cublasLtMatmulDescOpaque {
  int compute, scale, transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
};
struct cublasLtMatrixLayoutOpaque {
  int type;
  uint64_t rows, cols;
  int64_t ld;
};
struct cublasLtMatmulPreferenceOpaque {
  uint64_t workspace = 0;
  uint32_t mask = CUBLASLT_REDUCTION_SCHEME_MASK;
  uint32_t align[4] = {256, 256, 256, 256};
};

namespace {

constexpr uint64_t kAlgoMagic = 0x6367656d756c7400ull;  // algo.data[0]; data[1] split-K parts, data[2] scheme
constexpr int kSplits = 4;

bool failing(const char* what) {
  const char* f = std::getenv("CGEMU_CUBLASLT_FAIL");
  return f != nullptr && std::strcmp(f, what) == 0;
}

void logLine(const std::string& json) {
  const char* path = std::getenv("CGEMU_CUBLASLT_LOG");
  if (path == nullptr || *path == '\0') return;
  if (FILE* f = std::fopen(path, "a")) {
    std::fprintf(f, "%s\n", json.c_str());
    std::fclose(f);
  }
}

std::string num(uint64_t v) { return std::to_string(v); }

// op(X) of a column-major layout: its rows and columns.
void opShape(const cublasLtMatrixLayoutOpaque* l, int op, uint64_t* rows, uint64_t* cols) {
  *rows = op == CUBLAS_OP_N ? l->rows : l->cols;
  *cols = op == CUBLAS_OP_N ? l->cols : l->rows;
}

// What a (desc, layouts) pair must satisfy; CUBLAS_STATUS_SUCCESS when it does.
cublasStatus_t validate(const cublasLtMatmulDescOpaque* d, const cublasLtMatrixLayoutOpaque* a, const cublasLtMatrixLayoutOpaque* b,
                        const cublasLtMatrixLayoutOpaque* c, const cublasLtMatrixLayoutOpaque* dd, uint64_t* m, uint64_t* n,
                        uint64_t* k) {
  if (!d || !a || !b || !c || !dd) return CUBLAS_STATUS_INVALID_VALUE;
  if (d->compute != CUBLAS_COMPUTE_32F || d->scale != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (a->type != b->type || (a->type != CUDA_R_32F && a->type != CUDA_R_16BF)) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (c->type != CUDA_R_32F || dd->type != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  uint64_t am, ak, bk, bn;
  opShape(a, d->transa, &am, &ak);
  opShape(b, d->transb, &bk, &bn);
  if (ak != bk || c->rows != am || c->cols != bn || dd->rows != am || dd->cols != bn) return CUBLAS_STATUS_INVALID_VALUE;
  for (const cublasLtMatrixLayoutOpaque* l : {a, b, c, dd})
    if (l->ld < 1 || static_cast<uint64_t>(l->ld) < l->rows) return CUBLAS_STATUS_INVALID_VALUE;
  *m = am, *n = bn, *k = ak;
  return CUBLAS_STATUS_SUCCESS;
}

struct Job {
  cublasLtMatmulDescOpaque desc;
  cublasLtMatrixLayoutOpaque a, b, c;
  float alpha, beta;
  const void* A;
  const void* B;
  const float* C;
  float* D;
  uint64_t m, n, k;
  int splits;
};

float element(const cublasLtMatrixLayoutOpaque& l, const void* p, int op, uint64_t i, uint64_t j) {
  const uint64_t r = op == CUBLAS_OP_N ? i : j, c = op == CUBLAS_OP_N ? j : i;
  const uint64_t at = r + c * static_cast<uint64_t>(l.ld);
  if (l.type == CUDA_R_32F) return static_cast<const float*>(p)[at];
  const uint32_t bits = static_cast<uint32_t>(static_cast<const uint16_t*>(p)[at]) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

void run(void* data) {
  Job* j = static_cast<Job*>(data);
  const uint64_t part = (j->k + j->splits - 1) / j->splits;
  for (uint64_t col = 0; col < j->n; ++col) {
    for (uint64_t row = 0; row < j->m; ++row) {
      float acc = 0.0f;
      for (int s = 0; s < j->splits; ++s) {
        float partial = 0.0f;
        const uint64_t k0 = s * part, k1 = std::min<uint64_t>(j->k, k0 + part);
        for (uint64_t p = k0; p < k1; ++p)
          partial = std::fmaf(element(j->a, j->A, j->desc.transa, row, p), element(j->b, j->B, j->desc.transb, p, col), partial);
        acc = s == 0 ? partial : acc + partial;
      }
      const float v = j->alpha * acc;
      const uint64_t at = row + col * static_cast<uint64_t>(j->c.ld);
      j->D[at] = j->beta == 0.0f ? v : j->beta * j->C[at] + v;
    }
  }
  delete j;
}

}  // namespace

CGEMU_LT_EXPORT size_t cublasLtGetVersion(void) {
  const char* v = std::getenv("CGEMU_CUBLASLT_VERSION");
  return v && *v ? static_cast<size_t>(std::strtoull(v, nullptr, 10)) : 130000;
}

CGEMU_LT_EXPORT const char* cublasLtGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS_UNKNOWN";
  }
}

CGEMU_LT_EXPORT const char* cublasLtGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized (emulator stand-in)";
    case CUBLAS_STATUS_INVALID_VALUE: return "an unsupported value or parameter was passed to the function (emulator stand-in)";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute (emulator stand-in)";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported (emulator stand-in)";
    default: return "";
  }
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtCreate(cublasLtHandle_t* h) {
  logLine("{\"call\":\"create\"}");
  if (!h) return CUBLAS_STATUS_INVALID_VALUE;
  if (failing("create")) return CUBLAS_STATUS_NOT_INITIALIZED;
  *h = new cublasLtContext{0x6c74u};
  return CUBLAS_STATUS_SUCCESS;
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) {
  delete h;
  return CUBLAS_STATUS_SUCCESS;
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t compute, cudaDataType_t scale) {
  if (!d) return CUBLAS_STATUS_INVALID_VALUE;
  *d = new cublasLtMatmulDescOpaque{static_cast<int>(compute), static_cast<int>(scale)};
  return CUBLAS_STATUS_SUCCESS;
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) {
  delete d;
  return CUBLAS_STATUS_SUCCESS;
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr,
                                                              const void* buf, size_t size) {
  if (!d || !buf || size != sizeof(int32_t)) return CUBLAS_STATUS_INVALID_VALUE;
  int32_t v;
  std::memcpy(&v, buf, sizeof v);
  if (v != CUBLAS_OP_N && v != CUBLAS_OP_T) return CUBLAS_STATUS_INVALID_VALUE;
  if (attr == CUBLASLT_MATMUL_DESC_TRANSA) d->transa = v;
  else if (attr == CUBLASLT_MATMUL_DESC_TRANSB) d->transb = v;
  else return CUBLAS_STATUS_INVALID_VALUE;
  return CUBLAS_STATUS_SUCCESS;
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType_t type, uint64_t rows, uint64_t cols,
                                                          int64_t ld) {
  if (!l) return CUBLAS_STATUS_INVALID_VALUE;
  *l = new cublasLtMatrixLayoutOpaque{static_cast<int>(type), rows, cols, ld};
  return CUBLAS_STATUS_SUCCESS;
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) {
  delete l;
  return CUBLAS_STATUS_SUCCESS;
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t* p) {
  if (!p) return CUBLAS_STATUS_INVALID_VALUE;
  *p = new cublasLtMatmulPreferenceOpaque();
  return CUBLAS_STATUS_SUCCESS;
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) {
  delete p;
  return CUBLAS_STATUS_SUCCESS;
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr,
                                                                    const void* buf, size_t size) {
  if (!p || !buf) return CUBLAS_STATUS_INVALID_VALUE;
  if (attr == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
    if (size != sizeof(uint64_t)) return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy(&p->workspace, buf, size);
    return CUBLAS_STATUS_SUCCESS;
  }
  if (size != sizeof(uint32_t)) return CUBLAS_STATUS_INVALID_VALUE;
  uint32_t v;
  std::memcpy(&v, buf, sizeof v);
  switch (attr) {
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK: p->mask = v; return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES: p->align[0] = v; return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES: p->align[1] = v; return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES: p->align[2] = v; return CUBLAS_STATUS_SUCCESS;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: p->align[3] = v; return CUBLAS_STATUS_SUCCESS;
    default: return CUBLAS_STATUS_INVALID_VALUE;
  }
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t a,
                                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                                              cublasLtMatrixLayout_t dd, cublasLtMatmulPreference_t pref,
                                                              int requested, cublasLtMatmulHeuristicResult_t results[], int* returned) {
  if (!h || !pref || !results || !returned || requested <= 0) return CUBLAS_STATUS_INVALID_VALUE;
  uint64_t m = 0, n = 0, k = 0;
  const cublasStatus_t v = validate(d, a, b, c, dd, &m, &n, &k);
  logLine("{\"call\":\"heuristic\",\"m\":" + num(m) + ",\"n\":" + num(n) + ",\"k\":" + num(k) + ",\"transa\":" + num(d ? d->transa : 0) +
          ",\"transb\":" + num(d ? d->transb : 0) + ",\"type\":" + num(a ? a->type : 0) + ",\"mask\":" + num(pref->mask) +
          ",\"workspace\":" + num(pref->workspace) + ",\"align\":[" + num(pref->align[0]) + "," + num(pref->align[1]) + "," +
          num(pref->align[2]) + "," + num(pref->align[3]) + "]}");
  if (v != CUBLAS_STATUS_SUCCESS) return v;
  if (failing("heuristic")) return CUBLAS_STATUS_NOT_SUPPORTED;
  *returned = 0;
  if (failing("noalgo")) return CUBLAS_STATUS_SUCCESS;
  auto add = [&](int splits, uint32_t scheme) {
    if (*returned >= requested) return;
    cublasLtMatmulHeuristicResult_t& r = results[(*returned)++];
    std::memset(&r, 0, sizeof r);
    r.algo.data[0] = kAlgoMagic;
    r.algo.data[1] = static_cast<uint64_t>(splits);
    r.algo.data[2] = scheme;
    r.workspaceSize = splits > 1 ? 1024 : 0;
    r.state = CUBLAS_STATUS_SUCCESS;
    r.wavesCount = 1.0f;
  };
  // A split-K algorithm first where the mask allows one (as a GPU's heuristic may offer for
  // a long K), then the plain one.
  if (pref->mask & CUBLASLT_REDUCTION_SCHEME_INPLACE) add(kSplits, CUBLASLT_REDUCTION_SCHEME_INPLACE);
  add(1, CUBLASLT_REDUCTION_SCHEME_NONE);
  return CUBLAS_STATUS_SUCCESS;
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtMatmulAlgoConfigGetAttribute(const cublasLtMatmulAlgo_t* algo, cublasLtMatmulAlgoConfigAttributes_t attr,
                                                                    void* buf, size_t size, size_t* written) {
  if (!algo || !buf || size != sizeof(uint32_t) || algo->data[0] != kAlgoMagic) return CUBLAS_STATUS_INVALID_VALUE;
  uint32_t v;
  if (attr == CUBLASLT_ALGO_CONFIG_SPLITK_NUM) v = static_cast<uint32_t>(algo->data[1]);
  else if (attr == CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME) v = static_cast<uint32_t>(algo->data[2]);
  else return CUBLAS_STATUS_INVALID_VALUE;
  std::memcpy(buf, &v, sizeof v);
  if (written) *written = sizeof v;
  return CUBLAS_STATUS_SUCCESS;
}

CGEMU_LT_EXPORT cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t d, const void* alpha, const void* A,
                                              cublasLtMatrixLayout_t a, const void* B, cublasLtMatrixLayout_t b, const void* beta,
                                              const void* C, cublasLtMatrixLayout_t c, void* D, cublasLtMatrixLayout_t dd,
                                              const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspaceBytes,
                                              cublasLtStream_t stream) {
  if (!h || !alpha || !beta || !A || !B || !D || !algo || algo->data[0] != kAlgoMagic) return CUBLAS_STATUS_INVALID_VALUE;
  uint64_t m = 0, n = 0, k = 0;
  const cublasStatus_t v = validate(d, a, b, c, dd, &m, &n, &k);
  logLine("{\"call\":\"matmul\",\"m\":" + num(m) + ",\"n\":" + num(n) + ",\"k\":" + num(k) + ",\"splits\":" + num(algo->data[1]) + "}");
  if (v != CUBLAS_STATUS_SUCCESS) return v;
  if (failing("matmul")) return CUBLAS_STATUS_EXECUTION_FAILED;
  if (algo->data[1] > 1 && (!workspace || workspaceBytes < 1024)) return CUBLAS_STATUS_INVALID_VALUE;
  const auto* head = reinterpret_cast<const cgemuStreamHead*>(stream);
  if (head == nullptr || head->magic != CGEMU_STREAM_MAGIC) {
    std::fprintf(stderr, "cgemu: cublasLtMatmul: the stand-in needs a stream made by cudaStreamCreate (got %p)\n", stream);
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  Job* j = new Job{*d, *a, *b, *c, 0, 0, A, B, static_cast<const float*>(C), static_cast<float*>(D), m, n, k,
                   static_cast<int>(algo->data[1])};
  std::memcpy(&j->alpha, alpha, sizeof(float));
  std::memcpy(&j->beta, beta, sizeof(float));
  if (head->launchHostFunc(static_cast<cudaStream_t>(stream), run, j) != cudaSuccess) {
    delete j;
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  return CUBLAS_STATUS_SUCCESS;
}
