#include "gemm.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "parallel.h"

namespace craftgrad {

#if defined(CRAFTGRAD_HAVE_AVX512)
double avx512FmaLoop(int64_t iters);
#endif
#if defined(CRAFTGRAD_HAVE_AVX2)
double avx2FmaLoop(int64_t iters);
#endif

namespace {

const GemmKernel& chooseKernel() {
  // Same choice as the surgery kernels (and the same CRAFTGRAD_CPU_ISA override).
  const std::string isa = cpuDispatch().kernels->name;
#if defined(CRAFTGRAD_HAVE_AVX512)
  if (isa == "avx512") return gemmAvx512Kernel();
#endif
#if defined(CRAFTGRAD_HAVE_AVX2)
  if (isa == "avx2") return gemmAvx2Kernel();
#endif
  return gemmGenericKernel();
}

inline float at(const MatRef& m, int64_t row, int64_t col) {
  return m.trans ? m.p[col * m.ld + row] : m.p[row * m.ld + col];
}

// Panel `ip` of op(A) (rows ip*mr ..): dst[k*mr + i], zero-padded past M.
void packA(const MatRef& A, int64_t M, int64_t K, int mr, int64_t ip, float* dst) {
  const int64_t i0 = ip * mr;
  const int rows = static_cast<int>(std::min<int64_t>(mr, M - i0));
  if (A.trans) {
    for (int64_t k = 0; k < K; ++k) {
      const float* src = A.p + k * A.ld + i0;
      float* d = dst + k * mr;
      int i = 0;
      for (; i < rows; ++i) d[i] = src[i];
      for (; i < mr; ++i) d[i] = 0.0f;
    }
  } else {
    // Row-major A: gather one k across the panel's rows (mr sequential read streams,
    // sequential writes), in blocks of 16 k so each row's cache line is used fully.
    const float* src[32];
    for (int i = 0; i < mr; ++i) src[i] = A.p + (i0 + (i < rows ? i : 0)) * A.ld;
    for (int64_t k0 = 0; k0 < K; k0 += 16) {
      const int64_t k1 = std::min<int64_t>(K, k0 + 16);
      for (int64_t k = k0; k < k1; ++k) {
        float* d = dst + k * mr;
        for (int i = 0; i < rows; ++i) d[i] = src[i][k];
        for (int i = rows; i < mr; ++i) d[i] = 0.0f;
      }
    }
  }
}

// Panel `jp` of op(B) (columns jp*nr ..): dst[k*nr + j], zero-padded past N.
void packB(const MatRef& B, int64_t N, int64_t K, int nr, int64_t jp, float* dst) {
  const int64_t j0 = jp * nr;
  const int cols = static_cast<int>(std::min<int64_t>(nr, N - j0));
  if (!B.trans) {
    for (int64_t k = 0; k < K; ++k) {
      const float* src = B.p + k * B.ld + j0;
      float* d = dst + k * nr;
      int j = 0;
      for (; j < cols; ++j) d[j] = src[j];
      for (; j < nr; ++j) d[j] = 0.0f;
    }
  } else if (cols == nr && gemmKernel().packTrans && nr % gemmKernel().packTransWidth == 0) {
    gemmKernel().packTrans(B.p + j0 * B.ld, B.ld, K, nr, dst);
  } else {
    // Transposed B: same gather as packA's row-major case, over nr columns.
    const float* src[32];
    for (int j = 0; j < nr; ++j) src[j] = B.p + (j0 + (j < cols ? j : 0)) * B.ld;
    for (int64_t k = 0; k < K; ++k) {
      float* d = dst + k * nr;
      for (int j = 0; j < cols; ++j) d[j] = src[j][k];
      for (int j = cols; j < nr; ++j) d[j] = 0.0f;
    }
  }
}

}  // namespace

const GemmKernel& gemmKernel() {
  static const GemmKernel& k = chooseKernel();
  return k;
}

namespace {

using MicroFn = decltype(GemmKernel::micro);

void gemmTiles(MicroFn micro, int mr, int nr, int64_t M, int64_t N, int64_t K, float alpha, MatRef A, MatRef B,
               float beta, float* C, int64_t ldc) {
  const int64_t nMp = (M + mr - 1) / mr, nNp = (N + nr - 1) / nr;
  // Full row panels of A are read in place by the micro-kernel (no packing pass); only a
  // partial last panel is packed, zero-padded. B is packed into nr-column panels.
  const bool edgeA = M % mr != 0;
  // A fork-join costs about a microsecond when the workers are spinning (back-to-back
  // products) and several when they sleep: a worker needs about 512k multiply-adds to make
  // it pay, measured on the model's shapes.
  constexpr int64_t kMinWork = int64_t{1} << 19;
  const int64_t tileWork = static_cast<int64_t>(mr) * nr * K;
  // Tile (ip, jp) from the packed edge row panel `pa` (if it is the edge) and the packed
  // column panel `pbPanel`.
  auto tile = [&](int64_t ip, int64_t jp, const float* pa, const float* pbPanel) {
    const int rows = static_cast<int>(std::min<int64_t>(mr, M - ip * mr));
    const int cols = static_cast<int>(std::min<int64_t>(nr, N - jp * nr));
    const float* ap;
    int64_t astride, arow;
    if (rows < mr) {
      ap = pa, astride = mr, arow = 1;
    } else if (A.trans) {
      ap = A.p + ip * mr, astride = A.ld, arow = 1;
    } else {
      ap = A.p + ip * mr * A.ld, astride = 1, arow = A.ld;
    }
    micro(K, ap, astride, arow, pbPanel, C + ip * mr * ldc + jp * nr, ldc, rows, cols, alpha, beta);
  };
  // Packing buffers are thread_local and reused across calls: no page faults per product.
  if (nNp == 1) {
    // One column panel (the narrow LoRA products): each worker packs its own copy of it,
    // and the edge row panel if that tile is its, so no packed data crosses cores. On these
    // ~30 µs products, moving a 32 KB panel from one core's cache to the other's cost more
    // than packing it twice.
    parallelRanges(nMp, std::max<int64_t>(1, kMinWork / tileWork), [&](int64_t b, int64_t e) {
      thread_local std::vector<float> ownA, ownB;
      if (ownB.size() < static_cast<size_t>(nr * K)) ownB.resize(nr * K);
      packB(B, N, K, nr, 0, ownB.data());
      if (edgeA && e == nMp) {
        if (ownA.size() < static_cast<size_t>(mr * K)) ownA.resize(mr * K);
        packA(A, M, K, mr, nMp - 1, ownA.data());
      }
      for (int64_t ip = b; ip < e; ++ip) tile(ip, 0, ownA.data(), ownB.data());
    });
    return;
  }
  // Otherwise the calling thread's buffers, which pool workers write into and read from.
  thread_local std::vector<float> bufA, bufB;
  if (edgeA && bufA.size() < static_cast<size_t>(mr * K)) bufA.resize(mr * K);
  if (bufB.size() < static_cast<size_t>(nNp * nr * K)) bufB.resize(nNp * nr * K);
  float* pa = bufA.data();
  float* pb = bufB.data();
  if (edgeA) packA(A, M, K, mr, nMp - 1, pa);
  const int64_t panelWork = nMp * static_cast<int64_t>(mr) * nr * K;  // multiply-adds per column panel
  // Not for a short reduction over short rows (K <= 32 and N <= 1024: the head's weight
  // gradients over 16 rows, 896 wide): there a tile is mostly its stores, and column halves
  // of a 3.5 KB row put both cores' stores within a line or two of each other on every row
  // (measured: 896×896×16 at 38% of the peak split by columns, 57-69% by rows; from K = 64,
  // or with 4096-wide rows, the column split is as fast or faster: it packs B in parallel).
  const bool shortRowsAndK = K <= 32 && N <= 1024;
  if (!shortRowsAndK && nNp >= 2 && nNp * panelWork >= 2 * kMinWork) {
    // Enough column panels: each worker packs its own B panels and computes their tiles,
    // one fork-join per product (as fast as the row split below on the model's square
    // products, 2-2.5x faster on the head's few-row ones).
    // A worker's panels go in groups of about 1 MiB (half an L2), each group packed and
    // then swept by every row panel, so the sweep reads B from L2 rather than L3 (the
    // MLP's 4864-wide products: a worker's panels of B are ~9 MB).
    const int64_t group = std::max<int64_t>(1, (int64_t{1} << 18) / (static_cast<int64_t>(nr) * K));
    parallelRanges(nNp, std::max<int64_t>(1, kMinWork / panelWork), [&](int64_t b, int64_t e) {
      for (int64_t g0 = b; g0 < e; g0 += group) {
        const int64_t g1 = std::min(e, g0 + group);
        for (int64_t jp = g0; jp < g1; ++jp) packB(B, N, K, nr, jp, pb + jp * nr * K);
        for (int64_t ip = 0; ip < nMp; ++ip)
          for (int64_t jp = g0; jp < g1; ++jp) tile(ip, jp, pa, pb + jp * nr * K);
      }
    });
    return;
  }
  parallelRanges(nNp, std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, K * nr)), [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) packB(B, N, K, nr, p, pb + p * nr * K);
  });
  // Tiles in row-panel-major order: a worker's consecutive tiles reuse one A panel.
  parallelRanges(nMp * nNp, std::max<int64_t>(1, kMinWork / tileWork), [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) tile(t / nNp, t % nNp, pa, pb + (t % nNp) * nr * K);
  });
}

// A product with at most nrNarrow columns: the column tile when A is transposed (its rows
// are contiguous per k), else the narrow row tile, which reads a row-major A in place.
void narrowProduct(const GemmKernel& kern, int64_t M, int64_t N, int64_t K, float alpha, MatRef A, MatRef B,
                   float beta, float* C, int64_t ldc) {
  if (kern.microColumns && A.trans && N <= kern.nrColumns)
    gemmTiles(kern.microColumns, kern.mrColumns, kern.nrColumns, M, N, K, alpha, A, B, beta, C, ldc);
  else
    gemmTiles(kern.microNarrow, kern.mrNarrow, kern.nrNarrow, M, N, K, alpha, A, B, beta, C, ldc);
}

}  // namespace

void gemm(int64_t M, int64_t N, int64_t K, float alpha, MatRef A, MatRef B, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : C[i * ldc + j];
    return;
  }
  const GemmKernel& kern = gemmKernel();
  if (kern.microNarrow && N <= kern.nrNarrow) {
    narrowProduct(kern, M, N, K, alpha, A, B, beta, C, ldc);
    return;
  }
  if (M <= kern.nr && N > M) {
    // Few rows, many columns: T = alpha·op(B)ᵀ·op(A)ᵀ, whose M columns fit one column panel
    // (the narrow tile when M is within it), then C = beta·C + Tᵀ. The direct product would
    // split M rows into ceil(M/mr) row panels (a third of a 12-row panel wasted at M = 32) and
    // pack all of op(B) for them; the transposed one reads op(B) in place and packs only
    // op(A). Each element is the same k-ordered accumulator times alpha, added to C once,
    // exactly as a direct product would round it.
    thread_local std::vector<float> bufT;
    if (bufT.size() < static_cast<size_t>(N * M)) bufT.resize(N * M);
    float* T = bufT.data();
    const MatRef At{B.p, B.ld, !B.trans}, Bt{A.p, A.ld, !A.trans};
    if (kern.microNarrow && M <= kern.nrNarrow)
      narrowProduct(kern, N, M, K, alpha, At, Bt, 0.0f, T, M);
    else
      gemmTiles(kern.micro, kern.mr, kern.nr, N, M, K, alpha, At, Bt, 0.0f, T, M);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? T[j * M + i] : C[i * ldc + j] + T[j * M + i];
    return;
  }
  gemmTiles(kern.micro, kern.mr, kern.nr, M, N, K, alpha, A, B, beta, C, ldc);
}

double measureFmaPeakGflops(double seconds) {
  // The probe of the instruction set the kernels use (CRAFTGRAD_CPU_ISA included): its
  // loop and the flops of one iteration (chains × lanes × 2). The generic variant has no
  // probe: 0 means "not measured".
  double (*loop)(int64_t) = nullptr;
  double flopsPerIter = 0;
  const std::string isa = gemmKernel().name;
#if defined(CRAFTGRAD_HAVE_AVX512)
  if (isa == "avx512") loop = avx512FmaLoop, flopsPerIter = 20.0 * 16 * 2;
#endif
#if defined(CRAFTGRAD_HAVE_AVX2)
  if (isa == "avx2") loop = avx2FmaLoop, flopsPerIter = 12.0 * 8 * 2;
#endif
  if (loop == nullptr) return 0.0;
  const int64_t iters = 2000000;
  const int workers = ThreadPool::instance().size();
  std::vector<double> sink(workers);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t rounds = 0;
  double elapsed = 0;
  do {
    const std::function<void(int)> job = [&](int w) { sink[w] += loop(iters); };
    if (!ThreadPool::instance().tryRun(job)) job(0);
    ++rounds;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < seconds);
  double s = 0;
  for (double v : sink) s += v;
  const double flops = static_cast<double>(rounds) * iters * flopsPerIter * workers;
  return flops / elapsed / 1e9 + s * 0.0;
}

}  // namespace craftgrad
