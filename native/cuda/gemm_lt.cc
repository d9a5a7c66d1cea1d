// The products through cuBLASLt (gemm_lt.h). One state per device, made on first use and kept
// for the process: the cuBLASLt handle, a workspace of kWorkspaceBytes allocated once, the
// bf16 operand buffer (grown when a call needs more; each copy's rows padded to 8 elements;
// an operand already in bf16, LayerMat::p16, is read in place with its own leading dimension),
// and the plans: per shape (precision,
// transposes, M, N, K, leading dimensions, operand alignments) the descriptors and the
// algorithm cublasLtMatmulAlgoGetHeuristic chose, asked once and kept.
//
// Layout: craftgrad's operands are row-major; cuBLASLt's default order is column-major, and
// a row-major X is the column-major Xᵀ. So C = op(A)·op(B) (M×N) is computed as
// Cᵀ = op(B)ᵀ·op(A)ᵀ (N×M): cuBLASLt's "A" is craftgrad's B and its "B" is craftgrad's A,
// each with its own transpose flag, and C's leading dimension is ldc. No ORDER_ROW layouts
// (fewer algorithms support them).
//
// Determinism: the preference's reduction-scheme mask is CUBLASLT_REDUCTION_SCHEME_NONE,
// so the heuristic offers no split-K algorithm; and the chosen algorithm is checked again
// (CUBLASLT_ALGO_CONFIG_SPLITK_NUM 1 and REDUCTION_SCHEME NONE, else the next one offered).
// Each output is then one accumulation over k inside one kernel, so with the plan fixed
// per shape the bits do not change from run to run on one GPU model and library version
// (cuBLAS's own reproducibility statement; nothing here was measured on a GPU).
#include "gemm_lt.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "../cublaslt/cublaslt_library.h"
#include "cuda_internal.h"

namespace craftgrad {
namespace cuda {

namespace {

using cublaslt::CublasLtError;
using cublaslt::Library;

// What the heuristic may use as scratch; allocated once per device on first use.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;
// How many algorithms to ask for, so that one without split-K is among them.
constexpr int kAlgoRequests = 8;
constexpr long long kIntMax = 2147483647LL;

struct Key {
  int precision, ta, tb;
  long long M, N, K, lda, ldb, ldc;
  unsigned alignA, alignB, alignC;
  bool operator<(const Key& o) const {
    return std::tie(precision, ta, tb, M, N, K, lda, ldb, ldc, alignA, alignB, alignC) <
           std::tie(o.precision, o.ta, o.tb, o.M, o.N, o.K, o.lda, o.ldb, o.ldc, o.alignA, o.alignB, o.alignC);
  }
};

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;  // cuBLASLt's A, B, C (= D)
  cublasLtMatmulAlgo_t algo{};
  size_t workspaceBytes = 0;
};

struct DeviceLt {
  std::mutex m;  // held for a whole batch: the bf16 buffer is reused call after call
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  uint16_t* bf16 = nullptr;
  size_t bf16Elements = 0;
  std::map<Key, Plan> plans;
};

DeviceLt& deviceLt(int device) {
  static std::mutex m;
  static std::map<int, DeviceLt*>* all = new std::map<int, DeviceLt*>();  // never freed, like the device contexts
  std::lock_guard<std::mutex> lock(m);
  DeviceLt*& d = (*all)[device];
  if (!d) d = new DeviceLt();
  return *d;
}

// The largest power of two up to 256 that divides both the address and a row's bytes
// (cuBLASLt's minimum-alignment preference covers the pointer and the leading dimension).
unsigned alignmentOf(const void* p, long long ld, size_t elementBytes) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  const auto row = static_cast<unsigned long long>(ld) * elementBytes;
  unsigned align = 256;
  while (align > 1 && (a % align != 0 || row % align != 0)) align /= 2;
  return align;
}

// The bf16 copies' leading dimension: a whole number of 16-byte units (8 elements), so every
// row starts aligned, as tensor-core algorithms prefer.
long long paddedLd(long long cols) { return (cols + 7) / 8 * 8; }

void noticeOnce(const std::string& why) {
  static std::once_flag once;
  std::call_once(once, [&] {
    const std::string reason = why.compare(0, 11, "craftgrad: ") == 0 ? why.substr(11) : why;
    std::fprintf(stderr, "craftgrad: cuBLASLt is not available, so products run on the hand-written fp32 CUDA kernels (bf16 requests in fp32): %s\n",
                 reason.c_str());
    std::fflush(stderr);
  });
}

Plan makePlan(const Library& lib, DeviceLt& lt, const Key& k) {
  const cudaDataType_t in = k.precision == static_cast<int>(GemmPrecision::Bf16) ? CUDA_R_16BF : CUDA_R_32F;
  Plan plan;
  cublasLtMatmulPreference_t pref = nullptr;
  try {
    lib.check(lib.matmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
    // cuBLASLt's A is craftgrad's B (N×K after its op), its B craftgrad's A (K×M after its op).
    const int32_t opA = k.tb ? CUBLAS_OP_T : CUBLAS_OP_N, opB = k.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    lib.check(lib.matmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof opA), "cublasLtMatmulDescSetAttribute");
    lib.check(lib.matmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof opB), "cublasLtMatmulDescSetAttribute");
    // Stored column-major: craftgrad's row-major B (K×N, or N×K transposed) is N×K (K×N).
    lib.check(lib.matrixLayoutCreate(&plan.a, in, k.tb ? k.K : k.N, k.tb ? k.N : k.K, k.ldb), "cublasLtMatrixLayoutCreate");
    lib.check(lib.matrixLayoutCreate(&plan.b, in, k.ta ? k.M : k.K, k.ta ? k.K : k.M, k.lda), "cublasLtMatrixLayoutCreate");
    lib.check(lib.matrixLayoutCreate(&plan.c, CUDA_R_32F, k.N, k.M, k.ldc), "cublasLtMatrixLayoutCreate");
    lib.check(lib.preferenceCreate(&pref), "cublasLtMatmulPreferenceCreate");
    const uint64_t ws = kWorkspaceBytes;
    const uint32_t none = CUBLASLT_REDUCTION_SCHEME_NONE;
    lib.check(lib.preferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws), "cublasLtMatmulPreferenceSetAttribute");
    lib.check(lib.preferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &none, sizeof none), "cublasLtMatmulPreferenceSetAttribute");
    const uint32_t alignA = k.alignB, alignB = k.alignA, alignC = k.alignC;  // cuBLASLt's names
    lib.check(lib.preferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &alignA, sizeof alignA), "cublasLtMatmulPreferenceSetAttribute");
    lib.check(lib.preferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &alignB, sizeof alignB), "cublasLtMatmulPreferenceSetAttribute");
    lib.check(lib.preferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &alignC, sizeof alignC), "cublasLtMatmulPreferenceSetAttribute");
    lib.check(lib.preferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &alignC, sizeof alignC), "cublasLtMatmulPreferenceSetAttribute");
    cublasLtMatmulHeuristicResult_t results[kAlgoRequests] = {};
    int returned = 0;
    lib.check(lib.algoGetHeuristic(lt.handle, plan.desc, plan.a, plan.b, plan.c, plan.c, pref, kAlgoRequests, results, &returned),
              "cublasLtMatmulAlgoGetHeuristic");
    bool chosen = false;
    for (int i = 0; i < returned && !chosen; ++i) {
      const cublasLtMatmulHeuristicResult_t& r = results[i];
      if (r.state != CUBLAS_STATUS_SUCCESS || r.workspaceSize > kWorkspaceBytes) continue;
      uint32_t splits = 0, scheme = 0;
      size_t written = 0;
      lib.check(lib.algoConfigGetAttribute(&r.algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits, sizeof splits, &written),
                "cublasLtMatmulAlgoConfigGetAttribute");
      lib.check(lib.algoConfigGetAttribute(&r.algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme, sizeof scheme, &written),
                "cublasLtMatmulAlgoConfigGetAttribute");
      if (splits > 1 || scheme != CUBLASLT_REDUCTION_SCHEME_NONE) continue;
      plan.algo = r.algo;
      plan.workspaceBytes = r.workspaceSize;
      chosen = true;
    }
    if (!chosen) {
      throw CublasLtError("craftgrad: cuBLASLt offers no algorithm without split-K for the " +
                          std::string(k.precision == static_cast<int>(GemmPrecision::Bf16) ? "bf16" : "fp32") + " product " +
                          std::to_string(k.M) + "×" + std::to_string(k.K) + " · " + std::to_string(k.K) + "×" + std::to_string(k.N) +
                          " (" + std::to_string(returned) + " offered)");
    }
    lib.preferenceDestroy(pref);
  } catch (...) {
    if (pref) lib.preferenceDestroy(pref);
    if (plan.a) lib.matrixLayoutDestroy(plan.a);
    if (plan.b) lib.matrixLayoutDestroy(plan.b);
    if (plan.c) lib.matrixLayoutDestroy(plan.c);
    if (plan.desc) lib.matmulDescDestroy(plan.desc);
    throw;
  }
  return plan;
}

}  // namespace

bool ltGemmBatch(const DeviceContext& ctx, const Product* p, int count, GemmPrecision precision) {
  const bool bf16 = precision == GemmPrecision::Bf16;
  if (!bf16 && !tuning().fp32Lt) return false;
  // A bf16 operand (a frozen weight stored in bf16) in an fp32 product: the kernels widen it.
  if (!bf16)
    for (int i = 0; i < count; ++i)
      if (p[i].A.p16 || p[i].B.p16) return false;
  for (int i = 0; i < count; ++i)
    if (p[i].K == 0 && p[i].M > 0 && p[i].N > 0) return false;  // nothing to multiply: the kernels write beta·C (+0)
  std::string why;
  if (!cublaslt::available(&why)) {
    noticeOnce(why);
    return false;
  }
  const Library& lib = cublaslt::library();
  DeviceLt& lt = deviceLt(ctx.device);
  std::lock_guard<std::mutex> lock(lt.m);
  if (!lt.handle) {
    cublasLtHandle_t h = nullptr;
    lib.check(lib.create(&h), "cublasLtCreate");
    lt.handle = h;
  }
  if (!lt.workspace) lt.workspace = mallocDevice(ctx.device, kWorkspaceBytes, "cuBLASLt workspace");
  // The bf16 copies of every A and B of the batch, each 256-byte aligned (128 elements).
  auto round128 = [](size_t n) { return (n + 127) / 128 * 128; };
  size_t need = 0;
  for (int i = 0; i < count; ++i) {
    const Product& q = p[i];
    if (std::max({q.M, q.N, q.K, q.A.ld, q.B.ld, q.ldc}) > kIntMax)
      throw CudaError("craftgrad: matrix product too large for cuBLASLt (a dimension over 2^31 - 1)");
    if (bf16 && q.M > 0 && q.N > 0) {
      const long long ac = q.A.trans ? q.M : q.K, bc = q.B.trans ? q.K : q.N;
      // An operand already in bf16 (p16) is read in place: no copy.
      if (!q.A.p16) need += round128(static_cast<size_t>((q.A.trans ? q.K : q.M) * paddedLd(ac)));
      if (!q.B.p16) need += round128(static_cast<size_t>((q.B.trans ? q.N : q.K) * paddedLd(bc)));
    }
  }
  if (need > lt.bf16Elements) {
    if (lt.bf16) freeDevice(lt.bf16);  // synchronises the device: earlier products are done with it
    lt.bf16 = nullptr;
    lt.bf16Elements = 0;
    lt.bf16 = static_cast<uint16_t*>(mallocDevice(ctx.device, need * sizeof(uint16_t), "bf16 product operands"));
    lt.bf16Elements = need;
  }
  size_t at = 0;
  for (int i = 0; i < count; ++i) {
    const Product& q = p[i];
    if (q.M <= 0 || q.N <= 0) continue;
    const void* a = q.A.p;
    const void* b = q.B.p;
    long long lda = q.A.ld, ldb = q.B.ld;
    if (bf16) {
      // Stored row-major: A is M×K (K×M transposed), B is K×N (N×K); copies with padded rows.
      const long long ar = q.A.trans ? q.K : q.M, ac = q.A.trans ? q.M : q.K;
      const long long br = q.B.trans ? q.N : q.K, bc = q.B.trans ? q.K : q.N;
      // An operand stored in bf16 is read in place; an fp32 one is rounded into the next copy.
      auto inBf16 = [&](const Mat& m, long long rows, long long cols, const void** ptr, long long* ld) {
        if (m.p16) {
          *ptr = m.p16;
          return;
        }
        uint16_t* copy = lt.bf16 + at;
        at += round128(static_cast<size_t>(rows * paddedLd(cols)));
        launchToBf16(ctx, m.p, rows, cols, m.ld, copy, paddedLd(cols));
        *ptr = copy, *ld = paddedLd(cols);
      };
      inBf16(q.A, ar, ac, &a, &lda);
      inBf16(q.B, br, bc, &b, &ldb);
    }
    const size_t inBytes = bf16 ? 2 : 4;
    const Key key{static_cast<int>(precision), q.A.trans ? 1 : 0, q.B.trans ? 1 : 0, q.M, q.N, q.K, lda, ldb, q.ldc,
                  alignmentOf(a, lda, inBytes), alignmentOf(b, ldb, inBytes), alignmentOf(q.C, q.ldc, 4)};
    auto it = lt.plans.find(key);
    if (it == lt.plans.end()) it = lt.plans.emplace(key, makePlan(lib, lt, key)).first;
    const Plan& plan = it->second;
    const float alpha = q.alpha, beta = q.beta;
    lib.check(lib.matmul(lt.handle, plan.desc, &alpha, b, plan.a, a, plan.b, &beta, q.C, plan.c, q.C, plan.c, &plan.algo,
                         lt.workspace, kWorkspaceBytes, ctx.stream),
              "cublasLtMatmul");
  }
  return true;
}

}  // namespace cuda
}  // namespace craftgrad
