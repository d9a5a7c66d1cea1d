// The CPU layers (core/layers.h). Each loop keeps the arithmetic and order the models had
// before they shared it (the fixtures in test/fixtures/engine hold those bits).
#include "layers_cpu.h"

#include <cmath>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#include "../core/backend_error.h"
#include "../core/gelu_erf.h"
#include "../core/gelu_math.h"
#include "gemm.h"
#include "parallel.h"

namespace craftgrad {
namespace {

MatRef mat(const LayerMat& m) { return MatRef{m.p, m.ld, m.trans}; }

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

struct Block {
  void* p = nullptr;
  size_t bytes = 0;
  ~Block() { std::free(p); }
  char* reserve(size_t need) {
    if (bytes < need) {
      std::free(p);
      p = nullptr;
      bytes = 0;
      p = std::aligned_alloc(256, (need + 255) & ~size_t{255});
      if (!p) throw std::bad_alloc();
      bytes = need;
    }
    return static_cast<char*>(p);
  }
};

// The workspace blocks of every thread: a call takes a free block (the largest, grown when it
// needs more) and gives it back when its lease ends. Calls one after the other reuse one block
// whichever worker thread runs them (the async steps run on any of libuv's threads: a block
// per thread kept one model-sized workspace per pool thread); calls at the same time get
// blocks of their own.
class BlockPool {
 public:
  Block* take(size_t need) {
    std::lock_guard<std::mutex> lock(m_);
    if (free_.empty()) {
      all_.push_back(std::make_unique<Block>());
      free_.push_back(all_.back().get());
    }
    auto it = std::max_element(free_.begin(), free_.end(), [](const Block* a, const Block* b) { return a->bytes < b->bytes; });
    Block* b = *it;
    free_.erase(it);
    try {
      b->reserve(need);
    } catch (...) {
      free_.push_back(b);
      throw;
    }
    return b;
  }
  void give(Block* b) {
    std::lock_guard<std::mutex> lock(m_);
    free_.push_back(b);
  }

 private:
  std::mutex m_;
  std::vector<std::unique_ptr<Block>> all_;
  std::vector<Block*> free_;
};

BlockPool& blockPool() {
  static BlockPool pool;
  return pool;
}

class PooledWorkspace final : public WorkspaceLease {
 public:
  explicit PooledWorkspace(Block* b) : b_(b) {}
  ~PooledWorkspace() override { blockPool().give(b_); }
  char* data() const override { return static_cast<char*>(b_->p); }

 private:
  Block* b_;
};

class CpuLayers final : public Layers {
  // The CPU computes in fp32 only (the binding refuses bf16 first; this keeps the layers honest).
  static void refuseBf16(GemmPrecision p) {
    if (p != GemmPrecision::Fp32)
      throw BackendError("craftgrad: bf16 needs a CUDA device; the CPU computes in fp32", "ERR_INVALID_ARG_VALUE");
  }

 public:
  const char* deviceName() const override { return "cpu"; }
  bool hostMemory() const override { return true; }

  std::unique_ptr<WorkspaceLease> lease(size_t bytes, GemmPrecision products) override {
    refuseBf16(products);
    return std::make_unique<PooledWorkspace>(blockPool().take(std::max<size_t>(bytes, 256)));
  }
  void upload(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void download(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void copy(float* dst, const float* src, int64_t n) override {
    if (n > 0) std::memcpy(dst, src, sizeof(float) * static_cast<size_t>(n));
  }
  void zero(float* p, int64_t n) override {
    if (n > 0) std::memset(p, 0, sizeof(float) * static_cast<size_t>(n));
  }
  void checkExtent(int64_t, const char*) const override {}

  void gemm(const LayerProduct& p) override {
    if (p.A.p16 || p.B.p16) refuseBf16(GemmPrecision::Bf16);  // a bf16 operand: frozen weights in bf16
    craftgrad::gemm(p.M, p.N, p.K, p.alpha, mat(p.A), mat(p.B), p.beta, p.C, p.ldc);
  }
  void gemmBatch(const LayerProduct* p, int count) override {
    for (int i = 0; i < count; ++i) gemm(p[i]);
  }

  void biasGelu(float* Z, const float* b, const float* residual, float* out, int64_t rows, int64_t cols) override {
    if (residual) {
      const GemmKernel& k = gemmKernel();
      parallelRanges(rows, 64, [&](int64_t r0, int64_t r1) {
        k.biasGeluResidual(Z + r0 * cols, b, residual + r0 * cols, out + r0 * cols, r1 - r0, cols);
      });
      return;
    }
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        Z[i * cols + j] += b[j];
        out[i * cols + j] = gelu(Z[i * cols + j]);
      }
  }
  void geluBackward(const float* Z, const float* G, float* dZ, int64_t n, int streams) override {
    const GemmKernel& k = gemmKernel();
    constexpr int64_t kPiece = 1024;
    parallelRanges((n + kPiece - 1) / kPiece, 4, [&](int64_t p0, int64_t p1) {
      float gd[kPiece];
      for (int64_t i0 = p0 * kPiece; i0 < std::min(n, p1 * kPiece); i0 += kPiece) {
        const int64_t len = std::min(kPiece, n - i0);
        k.geluGrad(Z + i0, gd, len);
        for (int s = 0; s < streams; ++s)
          for (int64_t j = 0; j < len; ++j) dZ[s * n + i0 + j] = G[s * n + i0 + j] * gd[j];
      }
    });
  }
  // The erf form: one scalar path in double (gelu_erf.h), the same on every instruction set.
  void biasGeluErf(float* Z, const float* b, const float* residual, float* out, int64_t rows, int64_t cols) override {
    parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const float z = Z[i * cols + j] + b[j];
          Z[i * cols + j] = z;
          out[i * cols + j] = residual ? residual[i * cols + j] + geluErf(z) : geluErf(z);
        }
    });
  }
  void geluErfBackward(const float* Z, const float* G, float* dZ, int64_t n, int streams) override {
    parallelRanges(n, 1024, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const float gd = geluErfGrad(Z[i]);
        for (int s = 0; s < streams; ++s) dZ[s * n + i] = G[s * n + i] * gd;
      }
    });
  }
  void biasRelu(float* Z, const float* b, float* out, int64_t rows, int64_t cols) override {
    parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = 0; j < cols; ++j) {
          const float z = b ? Z[i * cols + j] + b[j] : Z[i * cols + j];
          Z[i * cols + j] = z;
          out[i * cols + j] = z > 0.0f || std::isnan(z) ? z : 0.0f;
        }
    });
  }
  void reluBackward(const float* Z, const float* G, float* dZ, int64_t n, int streams) override {
    parallelRanges(n, 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const bool off = Z[i] <= 0.0f;  // threshold_backward: a NaN Z passes G
        for (int s = 0; s < streams; ++s) dZ[s * n + i] = off ? 0.0f : G[s * n + i];
      }
    });
  }
  void layerScaleAdd(float* Y, const float* X, const float* gamma, int64_t rows, int64_t cols) override {
    parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = 0; j < cols; ++j) Y[i * cols + j] += X[i * cols + j] * gamma[j];
    });
  }
  void layerScaleBackward(const float* dY, const float* gamma, float* dX, int64_t rows, int64_t cols) override {
    parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = 0; j < cols; ++j) dX[i * cols + j] = dY[i * cols + j] * gamma[j];
    });
  }
  void addBias(float* Y, const float* b, int64_t rows, int64_t cols) override {
    parallelRanges(rows, 64, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = 0; j < cols; ++j) Y[i * cols + j] += b[j];
    });
  }
  void add(float* Y, const float* X, int64_t n) override {
    parallelRanges(n, 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) Y[i] += X[i];
    });
  }
  void swiglu(const float* Gt, const float* Up, float* Act, int64_t n) override {
    parallelRanges(n, 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) Act[i] = Gt[i] * sigmoid(Gt[i]) * Up[i];
    });
  }
  void swigluBackward(const float* Gt, const float* Up, float* dAct, float* dUp, int64_t n, int64_t m) override {
    parallelRanges(n, 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t k = i % m;
        const float g = Gt[k], sg = sigmoid(g), da = dAct[i];
        dUp[i] = da * (g * sg);
        dAct[i] = da * Up[k] * (sg * (1.0f + g * (1.0f - sg)));  // d gate
      }
    });
  }

  void rmsNorm(int64_t rows, int64_t D, float eps, const float* X, const float* w, float* Y, float* rstd) override {
    parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const float* x = X + i * D;
        double ss = 0;
        for (int64_t j = 0; j < D; ++j) ss += static_cast<double>(x[j]) * x[j];
        const float var = static_cast<float>(ss / static_cast<double>(D));
        const float r = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var + eps)));
        rstd[i] = r;
        for (int64_t j = 0; j < D; ++j) Y[i * D + j] = w[j] * (x[j] * r);
      }
    });
  }
  void rmsNormBackward(int64_t rows, int64_t M, int64_t D, const float* dY, const float* X, const float* rstd,
                       const float* w, float* dX) override {
    parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const float* x = X + (i % M) * D;
        const float* dy = dY + i * D;
        const double r = rstd[i % M];
        double dot = 0;  // Σ w·dy·x
        for (int64_t j = 0; j < D; ++j) dot += static_cast<double>(w[j]) * dy[j] * x[j];
        const double k = dot * r * r * r / static_cast<double>(D);
        for (int64_t j = 0; j < D; ++j) dX[i * D + j] += static_cast<float>(r * w[j] * dy[j] - k * x[j]);
      }
    });
  }

  void layerNorm(int64_t rows, int64_t D, float eps, const float* X, const float* w, const float* b, float* Y,
                 float* mean, float* rstd) override {
    parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const float* x = X + i * D;
        double sum = 0;
        for (int64_t j = 0; j < D; ++j) sum += x[j];
        const double mu = sum / static_cast<double>(D);
        double ss = 0;
        for (int64_t j = 0; j < D; ++j) {
          const double d = static_cast<double>(x[j]) - mu;
          ss += d * d;
        }
        const float m = static_cast<float>(mu);
        const float r = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(D) + static_cast<double>(eps)));
        mean[i] = m;
        rstd[i] = r;
        for (int64_t j = 0; j < D; ++j) Y[i * D + j] = ((x[j] - m) * r) * w[j] + b[j];
      }
    });
  }
  void layerNormBackward(int64_t rows, int64_t M, int64_t D, const float* dY, const float* X, const float* mean,
                         const float* rstd, const float* w, float* dX) override {
    parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const float* x = X + (i % M) * D;
        const float* dy = dY + i * D;
        const float m = mean[i % M], r = rstd[i % M];
        double sg = 0, sgx = 0;  // Σ g, Σ g·x̂
        for (int64_t j = 0; j < D; ++j) {
          const double g = static_cast<double>(w[j]) * dy[j];
          sg += g;
          sgx += g * static_cast<double>((x[j] - m) * r);
        }
        const double a = sg / static_cast<double>(D), c = sgx / static_cast<double>(D), rd = r;
        for (int64_t j = 0; j < D; ++j) {
          const double g = static_cast<double>(w[j]) * dy[j];
          dX[i * D + j] += static_cast<float>(rd * (g - a - static_cast<double>((x[j] - m) * r) * c));
        }
      }
    });
  }
  void layerNormParamGrad(int64_t M, int64_t D, const float* dY, const float* X, const float* mean, const float* rstd,
                          float scale, bool accumulate, float* dW, float* dB) override {
    // Threads own column ranges; each column sums its rows in order.
    parallelRanges(D, 64, [&](int64_t j0, int64_t j1) {
      thread_local std::vector<double> sums;
      sums.assign(static_cast<size_t>(2 * (j1 - j0)), 0.0);
      double* sw = sums.data();
      double* sb = sw + (j1 - j0);
      for (int64_t i = 0; i < M; ++i) {
        const float m = mean[i], r = rstd[i];
        for (int64_t j = j0; j < j1; ++j) {
          const float dy = dY[i * D + j];
          sw[j - j0] += static_cast<double>(dy) * static_cast<double>((X[i * D + j] - m) * r);
          sb[j - j0] += dy;
        }
      }
      for (int64_t j = j0; j < j1; ++j) {
        const float tw = scale * static_cast<float>(sw[j - j0]), tb = scale * static_cast<float>(sb[j - j0]);
        dW[j] = accumulate ? dW[j] + tw : tw;
        dB[j] = accumulate ? dB[j] + tb : tb;
      }
    });
  }

  void rope(float* X, int64_t rows, int64_t width, int64_t hd, int64_t T, const float* cosT, const float* sinT,
            bool inverse) override {
    const int64_t half = hd / 2;
    const float sg = inverse ? -1.0f : 1.0f;
    parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const float* cs = cosT + (i % T) * half;
        const float* sn = sinT + (i % T) * half;
        for (int64_t h = 0; h < width; h += hd) {
          float* x = X + i * width + h;
          for (int64_t j = 0; j < half; ++j) {
            const float a = x[j], b = x[j + half], sj = sg * sn[j];
            x[j] = a * cs[j] - b * sj;
            x[j + half] = b * cs[j] + a * sj;
          }
        }
      }
    });
  }

  void ropeProHead(float* X, int64_t rows, int64_t width, int64_t hd, int64_t T, const float* cosT, const float* sinT,
                   bool inverse) override {
    const int64_t half = hd / 2;
    parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const float* cs = cosT + (i % T) * half;
        const float* sn = sinT + (i % T) * half;
        for (int64_t h = 0; h < width; h += hd) {
          float* x = X + i * width + h;
          for (int64_t p = 0; p < half; ++p) {
            // Columns 2p and 2p + 1 use the frequencies 2p mod hd/2 and (2p + 1) mod hd/2.
            const int64_t f0 = (2 * p) % half, f1 = (2 * p + 1) % half;
            const float a = x[2 * p], b = x[2 * p + 1];
            if (!inverse) {
              x[2 * p] = a * cs[f0] + (-b) * sn[f0];
              x[2 * p + 1] = b * cs[f1] + a * sn[f1];
            } else {
              x[2 * p] = a * cs[f0] + b * sn[f1];
              x[2 * p + 1] = b * cs[f1] - a * sn[f0];
            }
          }
        }
      }
    });
  }

  // The CPU's attention keeps its (T × T) rows in each thread's own scratch.
  int64_t attentionScratch(const AttentionShape&, int) const override { return 0; }
  void attentionForward(const AttentionShape& s, const float* Q, const float* K, const float* V, float* Att,
                        float* rowMax, float* rowSum, float*) override {
    refuseBf16(s.precision);
    attentionForwardCpu(s, Q, K, V, Att, rowMax, rowSum);
  }
  void attentionBackward(const AttentionShape& s, int streams, const float* Q, const float* K, const float* V,
                         const float* rowMax, const float* rowSum, const float* dAtt, float* dQ, float* dK, float* dV,
                         float* dGate, float*) override {
    refuseBf16(s.precision);
    attentionBackwardCpu(s, streams, Q, K, V, rowMax, rowSum, dAtt, dQ, dK, dV, dGate);
  }

  void patchify(const float* images, float* P, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p) override {
    const int64_t gh = H / p, gw = W / p, N = gh * gw, width = C * p * p;
    parallelRanges(B * N, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t b = r / N, py = (r % N) / gw, px = r % gw;
        float* out = P + r * width;
        for (int64_t ch = 0; ch < C; ++ch)
          for (int64_t ky = 0; ky < p; ++ky)
            std::memcpy(out + (ch * p + ky) * p, images + ((b * C + ch) * H + py * p + ky) * W + px * p,
                        sizeof(float) * static_cast<size_t>(p));
      }
    });
  }

  void embedSequence(float* H, const float* prefix, const int32_t* ids, const float* embed, const float* queries,
                     int64_t B, int64_t T, int64_t P, int64_t S, int64_t D) override {
    for (int64_t b = 0; b < B; ++b) {
      float* x = H + b * T * D;
      if (P) std::memcpy(x, prefix + b * P * D, sizeof(float) * P * D);
      for (int64_t t = 0; t < S; ++t)
        std::memcpy(x + (P + t) * D, embed + static_cast<int64_t>(ids[b * S + t]) * D, sizeof(float) * D);
      std::memcpy(x + (P + S) * D, queries, sizeof(float) * (T - P - S) * D);
    }
  }
  void gatherRows(float* dst, const float* src, int64_t B, int64_t T, int64_t D, int64_t t0, int64_t n,
                  bool gather) override {
    for (int64_t b = 0; b < B; ++b) {
      if (gather) std::memcpy(dst + b * n * D, src + (b * T + t0) * D, sizeof(float) * n * D);
      else std::memcpy(dst + (b * T + t0) * D, src + b * n * D, sizeof(float) * n * D);
    }
  }

  void broadcastRows(float* dst, const float* src, int64_t B, int64_t T, int64_t D, int64_t t0, int64_t n) override {
    for (int64_t b = 0; b < B; ++b) std::memcpy(dst + (b * T + t0) * D, src, sizeof(float) * n * D);
  }
  void embedRows(float* H, const int32_t* ids, int64_t idStride, int64_t idOffset, const float* embed, int64_t B,
                 int64_t T, int64_t D, int64_t t0, int64_t n) override {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t i = 0; i < n; ++i)
        std::memcpy(H + (b * T + t0 + i) * D, embed + static_cast<int64_t>(ids[b * idStride + idOffset + i]) * D,
                    sizeof(float) * D);
  }
  void embedRowsBf16(float*, const int32_t*, int64_t, int64_t, const uint16_t*, int64_t, int64_t, int64_t, int64_t,
                     int64_t) override {
    refuseBf16(GemmPrecision::Bf16);
  }
  void widenBf16(float*, const uint16_t*, int64_t) override { refuseBf16(GemmPrecision::Bf16); }
  void copyColumns(float* dst, int64_t ldDst, const float* src, int64_t ldSrc, int64_t rows, int64_t cols,
                   bool accumulate) override {
    if (!accumulate && dst == src && ldDst == ldSrc) return;
    parallelRanges(rows, 64, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        if (accumulate)
          for (int64_t j = 0; j < cols; ++j) dst[i * ldDst + j] += src[i * ldSrc + j];
        else
          std::memcpy(dst + i * ldDst, src + i * ldSrc, sizeof(float) * cols);
      }
    });
  }

  void pool(const PoolShape& s, const float* H, float* f, int32_t* argmax) override {
    const int64_t T = s.T, D = s.D, F = s.F, n = s.n;
    for (int64_t b = 0; b < s.B; ++b) {
      const float* h = H + (b * T + s.t0) * D;
      float* out = f + b * F + s.off;
      for (int64_t d = 0; d < D; ++d) {
        if (s.pool == Pooling::Mean) {
          double sum = 0;
          for (int64_t t = 0; t < n; ++t) sum += h[t * D + d];
          out[d] = static_cast<float>(sum / static_cast<double>(n));
        } else {
          float best = h[d];
          int32_t arg = 0;
          for (int64_t t = 1; t < n; ++t)
            if (h[t * D + d] > best || (std::isnan(h[t * D + d]) && !std::isnan(best))) {
              best = h[t * D + d];
              arg = static_cast<int32_t>(t);
            }
          out[d] = best;
          argmax[b * D + d] = arg;
        }
      }
    }
  }
  void poolBackward(const PoolShape& s, const float* dF, const int32_t* argmax, float* G) override {
    const int64_t T = s.T, D = s.D, F = s.F, n = s.n;
    for (int64_t b = 0; b < s.B; ++b) {
      const float* dp = dF + b * F + s.off;
      float* g = G + (b * T + s.t0) * D;
      if (s.pool == Pooling::Mean) {
        // Divided, as PyTorch's mean backward (grad / n).
        for (int64_t t = 0; t < n; ++t)
          for (int64_t d = 0; d < D; ++d) g[t * D + d] += dp[d] / static_cast<float>(n);
      } else {
        for (int64_t d = 0; d < D; ++d) g[argmax[b * D + d] * D + d] += dp[d];
      }
    }
  }

  void l1Loss(const float* O, const float* bias, const float* Y, float* dO, int64_t rows, int64_t cols, double*,
              double* loss) override {
    const int64_t n = rows * cols;
    const float inv = 1.0f / static_cast<float>(n);
    double sum = 0;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const float e = (O[i * cols + j] + bias[j]) - Y[i * cols + j];
        sum += std::fabs(static_cast<double>(e));
        dO[i * cols + j] = e > 0 ? inv : (e < 0 ? -inv : 0.0f);  // PyTorch: sign(0) = 0
      }
    *loss = sum / static_cast<double>(n);
  }
  void mseLoss(const float* f, const float* fa, float* dF, int64_t n, double*, double* loss) override {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(f[i]) - static_cast<double>(fa[i]);
      sum += d * d;
    }
    *loss = sum / static_cast<double>(n);
    if (!dF) return;
    const float k = 2.0f / static_cast<float>(n);
    for (int64_t i = 0; i < n; ++i) dF[i] = k * (f[i] - fa[i]);
  }
  void columnSum(const float* X, int64_t rows, int64_t cols, int64_t ld, float scale, bool accumulate,
                 float* g) override {
    thread_local std::vector<double> sums;
    sums.assign(static_cast<size_t>(cols), 0.0);
    if (X)
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t j = 0; j < cols; ++j) sums[j] += X[i * ld + j];
    for (int64_t j = 0; j < cols; ++j) {
      const float t = scale * static_cast<float>(sums[j]);
      g[j] = accumulate ? g[j] + t : t;
    }
  }
};

}  // namespace

Layers& cpuLayers() {
  static CpuLayers* layers = new CpuLayers();  // never destroyed: workers may outlive static teardown
  return *layers;
}

}  // namespace craftgrad
