// The matrix product of every model on a CUDA device (gemm_cuda.h): hand-written kernels
// (no cuBLAS), one fmaf chain per output element over k in order, so every variant and
// batch gives the CPU's bits (README.md, "Model products"). Also the bf16 conversions of the
// products through cuBLASLt (gemm_lt.h): operands rounded to bf16, bf16 operands widened.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "cuda_internal.h"
#include "device_scratch.h"
#include "gemm_cuda.h"
#include "gemm_lt.h"

namespace craftgrad {
namespace cuda {
namespace {
// ---- matrix product: C = beta·C + alpha·op(A)·op(B), beta 0 or 1 ----
// A TBM×TBN output tile per CTA; each thread owns R×R outputs (R = 4 or 8) as R/4 runs of
// 4 rows and R/4 runs of 4 columns, the runs TBM/(R/4) apart, so its operands for one k
// are float4 shared loads: 2·R/4 loads for R² FMAs. k goes in tiles of BK through shared
// memory padded by 4 floats a row (tile stores free of bank conflicts, rows 16-byte
// aligned), two buffers deep: the next k tile is loaded from global memory into registers
// (16-byte loads where the operand is aligned) while the current one is multiplied, then
// stored to the other buffer; one barrier per k tile. Each output is one accumulator over
// k = 0..K-1 in order (fmaf), as on the CPU, then alpha·acc, then + C; the tail tile stops
// at K (no padded terms: fma(0, 0, -0) would give +0). Every variant, batched or not,
// therefore gives the same bits: the pipeline changes when operands arrive, not the chain.
//
// One launch computes up to kMaxBatch independent products of the same transposes (the
// LoRA gradients of a layer): blockIdx.x runs over the tiles of every product in turn, so
// products of different shapes (D×r and r×D) launch no idle CTAs.
constexpr int BK = 8;
constexpr int kMaxBatch = 4;
constexpr long long kIntMax = 2147483647LL;

struct GemmDesc {
  const float* A;
  const float* B;
  float* C;
  int M, N, K, lda, ldb, ldc;
  float alpha, beta;
  int vecA, vecB;  // base 16-byte aligned and ld a multiple of 4: float4 global loads allowed
  int tilesN;      // column tiles of this product
  int firstTile;   // its first tile in the launch's blockIdx.x
};

struct GemmBatch {
  GemmDesc d[kMaxBatch];
  int count;
};

// One operand's k tile (BK × TBX, X the rows of op(A) or the columns of op(B)), staged
// through registers, PER float4s a thread. kContig: k is the operand's contiguous dimension
// (A row-major, B transposed); a float4 then holds 4 consecutive k of one x and is stored
// transposed, else it holds 4 consecutive x of one k and is stored as one float4.
template <int TBX, bool kContig, int NT>
struct TileStage {
  static constexpr int F4 = TBX * BK / 4, PER = (F4 + NT - 1) / NT;
  float4 v[PER];

  __device__ static void coords(int e, int& x, int& k) {
    if (kContig) x = e / (BK / 4), k = (e % (BK / 4)) * 4;
    else k = e / (TBX / 4), x = (e % (TBX / 4)) * 4;
  }
  __device__ static long long at(int ld, int x, int k) {
    return kContig ? static_cast<long long>(x) * ld + k : static_cast<long long>(k) * ld + x;
  }
  // full: the whole tile lies inside the operand and vec holds (unconditional float4 loads).
  __device__ void load(const float* __restrict__ p, int ld, int x0, int X, int k0, int K, bool vec, bool full) {
#pragma unroll
    for (int q = 0; q < PER; ++q) {
      const int e = static_cast<int>(threadIdx.x) + q * NT;
      if (F4 % NT != 0 && e >= F4) break;
      int x, k;
      coords(e, x, k);
      const int gx = x0 + x, gk = k0 + k;
      if (full) {
        v[q] = __ldg(reinterpret_cast<const float4*>(p + at(ld, gx, gk)));
        continue;
      }
      const bool inside = kContig ? (gx < X && gk + 3 < K) : (gk < K && gx + 3 < X);
      if (vec && inside) {
        v[q] = __ldg(reinterpret_cast<const float4*>(p + at(ld, gx, gk)));
        continue;
      }
      float t[4];
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int ux = kContig ? gx : gx + u, uk = kContig ? gk + u : gk;
        t[u] = (ux < X && uk < K) ? p[at(ld, ux, uk)] : 0.0f;
      }
      v[q] = make_float4(t[0], t[1], t[2], t[3]);
    }
  }
  __device__ void store(float (*s)[TBX + 4]) const {
#pragma unroll
    for (int q = 0; q < PER; ++q) {
      const int e = static_cast<int>(threadIdx.x) + q * NT;
      if (F4 % NT != 0 && e >= F4) break;
      int x, k;
      coords(e, x, k);
      if (kContig) {
        s[k][x] = v[q].x, s[k + 1][x] = v[q].y, s[k + 2][x] = v[q].z, s[k + 3][x] = v[q].w;
      } else {
        *reinterpret_cast<float4*>(&s[k][x]) = v[q];
      }
    }
  }
};

template <bool TA, bool TB, int TBM, int TBN, int R>
__global__ void __launch_bounds__((TBM / R) * (TBN / R)) gemmKernel(const GemmBatch batch) {
  constexpr int RUNS = R / 4, TX = TBN / R, NT = (TBM / R) * (TBN / R);
  __shared__ __align__(16) float As[2][BK][TBM + 4];
  __shared__ __align__(16) float Bs[2][BK][TBN + 4];
  // This CTA's product: selected with constant indices (a run-time index into the
  // parameter would copy the batch to local memory).
  const int tile = static_cast<int>(blockIdx.x);
  GemmDesc d = batch.d[0];
#pragma unroll
  for (int z = 1; z < kMaxBatch; ++z)
    if (z < batch.count && tile >= batch.d[z].firstTile) d = batch.d[z];
  const int t = tile - d.firstTile;
  const int i0 = (t / d.tilesN) * TBM, j0 = (t % d.tilesN) * TBN;
  const int M = d.M, N = d.N, K = d.K;
  const int tid = threadIdx.x, tx = tid % TX, ty = tid / TX;
  // Output (r, c) of this thread is tile row rowOf(r), tile column colOf(c).
  auto rowOf = [&](int r) { return (r / 4) * (TBM / RUNS) + ty * 4 + r % 4; };
  auto colOf = [&](int c) { return (c / 4) * (TBN / RUNS) + tx * 4 + c % 4; };
  float acc[R][R];
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int c = 0; c < R; ++c) acc[r][c] = 0.0f;

  TileStage<TBM, !TA, NT> sa;
  TileStage<TBN, TB, NT> sb;
  const bool fullA = d.vecA && i0 + TBM <= M, fullB = d.vecB && j0 + TBN <= N;
  auto fetch = [&](int k0) {
    const bool kIn = k0 + BK <= K;
    sa.load(d.A, d.lda, i0, M, k0, K, d.vecA, fullA && kIn);
    sb.load(d.B, d.ldb, j0, N, k0, K, d.vecB, fullB && kIn);
  };
  // acc += the k rows [0, kmax) of one staged tile, in order.
  auto multiply = [&](const float (*as)[TBM + 4], const float (*bs)[TBN + 4], int k) {
    float a[R], b[R];
#pragma unroll
    for (int q = 0; q < RUNS; ++q) {
      const float4 av = *reinterpret_cast<const float4*>(&as[k][rowOf(4 * q)]);
      const float4 bv = *reinterpret_cast<const float4*>(&bs[k][colOf(4 * q)]);
      a[4 * q] = av.x, a[4 * q + 1] = av.y, a[4 * q + 2] = av.z, a[4 * q + 3] = av.w;
      b[4 * q] = bv.x, b[4 * q + 1] = bv.y, b[4 * q + 2] = bv.z, b[4 * q + 3] = bv.w;
    }
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int c = 0; c < R; ++c) acc[r][c] = __fmaf_rn(a[r], b[c], acc[r][c]);
  };

  const int tiles = (K + BK - 1) / BK;
  if (tiles > 0) {
    fetch(0);
    sa.store(As[0]);
    sb.store(Bs[0]);
  }
  __syncthreads();
  for (int kt = 0; kt < tiles; ++kt) {
    const int cur = kt & 1;
    const bool more = kt + 1 < tiles;
    if (more) fetch((kt + 1) * BK);  // in flight while the current tile is multiplied
    const int kmax = min(BK, K - kt * BK);
    if (kmax == BK) {
#pragma unroll
      for (int k = 0; k < BK; ++k) multiply(As[cur], Bs[cur], k);
    } else {
      for (int k = 0; k < kmax; ++k) multiply(As[cur], Bs[cur], k);
    }
    if (more) {
      // The other buffer was last read before the previous iteration's barrier.
      sa.store(As[cur ^ 1]);
      sb.store(Bs[cur ^ 1]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int gi = i0 + rowOf(r);
    if (gi >= M) continue;
#pragma unroll
    for (int c = 0; c < R; ++c) {
      const int gj = j0 + colOf(c);
      if (gj >= N) continue;
      float* p = d.C + static_cast<long long>(gi) * d.ldc + gj;
      const float v = __fmul_rn(d.alpha, acc[r][c]);
      *p = d.beta == 0.0f ? v : __fadd_rn(*p, v);
    }
  }
}

// By shape, when neither the caller nor CRAFTGRAD_CUDA_GEMM (tuning.h) forces one. A first
// guess, to be tuned on a GPU with bench/model.js --device cuda, which times every variant:
// the 8×8 register tiles when there are enough tiles (over the whole batch) to give every
// SM of the device one 64×64 tile or two 128×128 ones, else the 4×4 kernel, whose
// 256-thread CTAs keep four times as many threads busy on the narrow LoRA products; and
// when even its 64×64 tiles would leave half of the SMs idle (a layer's LoRA gradients:
// few outputs, long K that the fixed summation order cannot split), `small32`: the same
// 4×4 outputs a thread in 32×32 tiles (64-thread CTAs), spread over four times as many SMs.
GemmVariant chooseGemmVariant(const Product* p, int count, int multiprocessors) {
  const long long sms = std::max(1, multiprocessors);
  long long tiles64 = 0, tiles128 = 0;  // 64×64 and 128×128 tiles
  for (int i = 0; i < count; ++i) {
    tiles64 += ((p[i].M + 63) / 64) * ((p[i].N + 63) / 64);
    tiles128 += ((p[i].M + 127) / 128) * ((p[i].N + 127) / 128);
  }
  if (tiles128 >= 2 * sms) return GemmVariant::Tiled128;
  if (tiles64 >= sms) return GemmVariant::Tiled64;
  if (2 * tiles64 >= sms) return GemmVariant::Simple;
  return GemmVariant::Small32;
}

// fp32 -> bf16 bits, round to nearest even (as __float2bfloat16_rn): a NaN keeps its sign and
// top payload bits and is made quiet; a value that rounds past the largest bf16 becomes Inf.
__device__ __forceinline__ unsigned short toBf16Bits(float x) {
  const unsigned u = static_cast<unsigned>(__float_as_int(x));
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<unsigned short>((u >> 16) | 0x0040u);
  return static_cast<unsigned short>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// The bf16 products' operand copies (gemm_lt.cc): element e of the rows×cols matrix,
// grid-stride, into rows dstLd apart.
__global__ void __launch_bounds__(256) toBf16Kernel(const float* __restrict__ src, long long rows, long long cols,
                                                    long long ld, unsigned short* __restrict__ dst, long long dstLd) {
  const long long n = rows * cols;
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<long long>(gridDim.x) * blockDim.x) {
    const long long r = e / cols, c = e % cols;
    dst[r * dstLd + c] = toBf16Bits(src[r * ld + c]);
  }
}

// dst[i] = the bf16 bits src[i] widened exactly, grid-stride.
__global__ void __launch_bounds__(256) widenBf16Kernel(const unsigned short* __restrict__ src, long long n,
                                                       float* __restrict__ dst) {
  for (long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<long long>(gridDim.x) * blockDim.x)
    dst[e] = __int_as_float(static_cast<int>(static_cast<unsigned>(src[e]) << 16));
}

bool aligned16(const float* p, long long ld) { return reinterpret_cast<uintptr_t>(p) % 16 == 0 && ld % 4 == 0; }

template <int TBM, int TBN, int R>
void launchGemm(cudaStream_t s, unsigned tiles, bool ta, bool tb, const GemmBatch& b) {
  constexpr unsigned threads = (TBM / R) * (TBN / R);
  if (!ta && !tb) gemmKernel<false, false, TBM, TBN, R><<<tiles, threads, 0, s>>>(b);
  else if (!ta && tb) gemmKernel<false, true, TBM, TBN, R><<<tiles, threads, 0, s>>>(b);
  else if (ta && !tb) gemmKernel<true, false, TBM, TBN, R><<<tiles, threads, 0, s>>>(b);
  else gemmKernel<true, true, TBM, TBN, R><<<tiles, threads, 0, s>>>(b);
}

}  // namespace

void launchToBf16(const DeviceContext& ctx, const float* src, long long rows, long long cols, long long ld, uint16_t* dst,
                  long long dstLd) {
  const long long n = rows * cols;
  if (n <= 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<long long>((n + 255) / 256, 4096));
  toBf16Kernel<<<blocks, 256, 0, ctx.stream>>>(src, rows, cols, ld, reinterpret_cast<unsigned short*>(dst), dstLd);
  CG_CUDA(ctx.device, cudaGetLastError());
}

void launchWidenBf16(const DeviceContext& ctx, const uint16_t* src, long long n, float* dst) {
  if (n <= 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<long long>((n + 255) / 256, 4096));
  widenBf16Kernel<<<blocks, 256, 0, ctx.stream>>>(reinterpret_cast<const unsigned short*>(src), n, dst);
  CG_CUDA(ctx.device, cudaGetLastError());
}

// gemm_cuda.h: through cuBLASLt when the precision asks for it (gemm_lt.h), else in launches
// of up to kMaxBatch.
void gemmBatch(const DeviceContext& ctx, const Product* p, int count, GemmVariant variant, GemmPrecision precision) {
  if (ltGemmBatch(ctx, p, count, precision)) return;
  bool bf16Operand = false;
  for (int i = 0; i < count; ++i) bf16Operand = bf16Operand || p[i].A.p16 || p[i].B.p16;
  if (bf16Operand) {
    // No cuBLASLt: the bf16 operands (frozen weights stored in bf16) widened exactly into a
    // per-device buffer (same leading dimension), then the fp32 kernels, as for fp32 operands.
    static std::mutex m;
    static std::map<int, Scratch*>* buffers = new std::map<int, Scratch*>();  // kept for the process
    std::lock_guard<std::mutex> lock(m);
    Scratch*& buf = (*buffers)[ctx.device];
    if (!buf) buf = new Scratch();
    // A stored R×C operand of leading dimension ld spans (R − 1)·ld + C elements.
    auto span = [](const Mat& x, long long rows, long long cols) -> long long {
      return rows <= 0 || cols <= 0 ? 0 : (rows - 1) * x.ld + cols;
    };
    std::vector<Product> q(p, p + count);
    size_t need = 0;
    for (const Product& x : q) {
      if (x.M <= 0 || x.N <= 0) continue;
      if (x.A.p16) need += (static_cast<size_t>(span(x.A, x.A.trans ? x.K : x.M, x.A.trans ? x.M : x.K)) + 63) / 64 * 64;
      if (x.B.p16) need += (static_cast<size_t>(span(x.B, x.B.trans ? x.N : x.K, x.B.trans ? x.K : x.N)) + 63) / 64 * 64;
    }
    std::unique_lock<std::mutex> held(buf->m);
    float* at = reinterpret_cast<float*>(buf->reserve(ctx.device, need * sizeof(float), "bf16 operands widened"));
    for (Product& x : q) {
      const bool used = x.M > 0 && x.N > 0;  // the kernels skip the others: nothing widened
      for (Mat* o : {&x.A, &x.B}) {
        if (!o->p16) continue;
        const bool isA = o == &x.A;
        const long long rows = isA ? (o->trans ? x.K : x.M) : (o->trans ? x.N : x.K);
        const long long cols = isA ? (o->trans ? x.M : x.K) : (o->trans ? x.K : x.N);
        const long long n = used ? span(*o, rows, cols) : 0;
        launchWidenBf16(ctx, o->p16, n, at);
        *o = Mat{at, o->ld, o->trans};  // no p16 left: the call below runs the kernels
        at += (n + 63) / 64 * 64;
      }
    }
    gemmBatch(ctx, q.data(), count, variant, precision);
    return;
  }
  if (variant == GemmVariant::Auto) variant = tuning().gemm;
  const bool ta = count > 0 && p[0].A.trans, tb = count > 0 && p[0].B.trans;
  for (int first = 0; first < count; first += kMaxBatch) {
    const int n = std::min(kMaxBatch, count - first);
    const GemmVariant v = variant == GemmVariant::Auto ? chooseGemmVariant(p + first, n, ctx.multiprocessors) : variant;
    const long long tile = v == GemmVariant::Tiled128 ? 128 : v == GemmVariant::Small32 ? 32 : 64;
    GemmBatch b{};
    long long tiles = 0;
    for (int i = 0; i < n; ++i) {
      const Product& q = p[first + i];
      if (q.A.trans != ta || q.B.trans != tb) throw CudaError("craftgrad: internal error: a batch of products mixes transposes");
      // The kernels index with int dimensions.
      if (std::max({q.M, q.N, q.K, q.A.ld, q.B.ld, q.ldc}) > kIntMax)
        throw CudaError("craftgrad: matrix product too large for the CUDA kernels (a dimension over 2^31 - 1)");
      GemmDesc& d = b.d[b.count];
      if (q.M <= 0 || q.N <= 0) continue;  // nothing to write
      d = GemmDesc{q.A.p, q.B.p, q.C, static_cast<int>(q.M), static_cast<int>(q.N), static_cast<int>(q.K),
                   static_cast<int>(q.A.ld), static_cast<int>(q.B.ld), static_cast<int>(q.ldc), q.alpha, q.beta,
                   aligned16(q.A.p, q.A.ld), aligned16(q.B.p, q.B.ld), static_cast<int>((q.N + tile - 1) / tile),
                   static_cast<int>(tiles)};
      tiles += ((q.M + tile - 1) / tile) * d.tilesN;
      ++b.count;
    }
    if (b.count == 0) continue;
    // blockIdx.x (up to 2^31 - 1) counts the tiles of the whole launch.
    if (tiles > 2147483647LL) throw CudaError("craftgrad: matrix product too large for one launch (over 2^31 tiles)");
    switch (v) {
      case GemmVariant::Tiled128: launchGemm<128, 128, 8>(ctx.stream, static_cast<unsigned>(tiles), ta, tb, b); break;
      case GemmVariant::Tiled64: launchGemm<64, 64, 8>(ctx.stream, static_cast<unsigned>(tiles), ta, tb, b); break;
      case GemmVariant::Small32: launchGemm<32, 32, 4>(ctx.stream, static_cast<unsigned>(tiles), ta, tb, b); break;
      default: launchGemm<64, 64, 4>(ctx.stream, static_cast<unsigned>(tiles), ta, tb, b);
    }
    CG_CUDA(ctx.device, cudaGetLastError());
  }
}

void gemm(const DeviceContext& ctx, long long M, long long N, long long K, float alpha, Mat A, Mat B, float beta,
          float* C, long long ldc, GemmVariant variant, GemmPrecision precision) {
  const Product p{M, N, K, alpha, A, B, beta, C, ldc};
  gemmBatch(ctx, &p, 1, variant, precision);
}

}  // namespace cuda
}  // namespace craftgrad
