// One Qwen2 decoder layer on the CPU, as transformers' Qwen2DecoderLayer with PEFT LoRA:
//   y1 = RMSNorm(x) · w_in;  q, k, v = y1·Wᵀ + b (+ s·(y1·Aᵀ)·Bᵀ); RoPE on q, k (rotate-half)
//   x1 = x + attention(q, k, v)·W_oᵀ (+ LoRA);  y2 = RMSNorm(x1) · w_post
//   out = x1 + (silu(y2·W_gᵀ) ⊙ y2·W_uᵀ)·W_dᵀ (each + LoRA)
// The backward runs over `streams` gradient row blocks at once (the action and the
// retention losses' gradients stacked, M rows each): every input-gradient product and
// element loop runs once for both; only the LoRA weight gradients are per stream.
#include <cmath>
#include <cstring>

#include "gemm.h"
#include "parallel.h"
#include "qwen2_parts.h"

namespace craftgrad {
namespace {

MatRef mat(const float* p, int64_t ld, bool trans = false) { return MatRef{p, ld, trans}; }

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// Y (M×out) = X·Wᵀ (+ bias) (+ s·U·Bᵀ with U = X·Aᵀ kept), PEFT's order: base, then LoRA.
void linearForward(const Qwen2Config& c, int linear, int64_t M, const float* X, const float* W, const float* bias,
                   const Qwen2Lora& lora, float* U, float* Y) {
  const int64_t in = c.linearIn(linear), out = c.linearOut(linear), r = c.r;
  gemm(M, out, in, 1.0f, mat(X, in), mat(W, in, true), 0.0f, Y, out);
  if (bias)
    parallelRanges(M, 64, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = 0; j < out; ++j) Y[i * out + j] += bias[j];
    });
  if (lora.A[linear]) {
    gemm(M, r, in, 1.0f, mat(X, in), mat(lora.A[linear], in, true), 0.0f, U, r);
    gemm(M, out, r, c.loraScale(), mat(U, r), mat(lora.B[linear], r, true), 1.0f, Y, out);
  }
}

// Rotary embedding in place on `width` columns of M rows (heads of hd), position t = row mod T.
// inverse: the transpose (the backward of the rotation).
void rope(const Qwen2Shape& s, float* X, int64_t rows, int64_t width, bool inverse) {
  const int64_t hd = s.c.hd(), half = hd / 2, T = s.T;
  const float sg = inverse ? -1.0f : 1.0f;
  parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* cs = s.cosT.data() + (i % T) * half;
      const float* sn = s.sinT.data() + (i % T) * half;
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

}  // namespace

Qwen2Shape::Qwen2Shape(const Qwen2Config& cfg, int64_t batch)
    : c(cfg), off(qwen2LayerOffsets(cfg)), B(batch), T(cfg.T()), M(batch * cfg.T()) {
  qwen2RopeTables(c, cosT, sinT);
}

void allocLayerActs(const Qwen2Shape& s, Qwen2Arena& a, Qwen2LayerActs& x) {
  const Qwen2Config& c = s.c;
  const int64_t M = s.M, D = c.D, rows = s.B * c.heads * s.T;
  x.Y1 = a.take(M * D);
  x.r1 = a.take(M);
  x.Q = a.take(M * c.qDim());
  x.K = a.take(M * c.kvDim());
  x.V = a.take(M * c.kvDim());
  x.rowMax = a.take(rows);
  x.rowSum = a.take(rows);
  x.Att = a.take(M * c.qDim());
  x.X1 = a.take(M * D);
  x.Y2 = a.take(M * D);
  x.r2 = a.take(M);
  x.Gt = a.take(M * c.I);
  x.Up = a.take(M * c.I);
  x.Act = a.take(M * c.I);
  for (int i = 0; i < kQwen2Linears; ++i) x.U[i] = c.targeted(i) ? a.take(M * c.r) : nullptr;
}

void rmsNormForward(int64_t rows, int64_t D, double eps, const float* X, const float* w, float* Y, float* rstd) {
  parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* x = X + i * D;
      double ss = 0;
      for (int64_t j = 0; j < D; ++j) ss += static_cast<double>(x[j]) * x[j];
      const float var = static_cast<float>(ss / static_cast<double>(D));
      const float r = static_cast<float>(1.0 / std::sqrt(static_cast<double>(var + static_cast<float>(eps))));
      rstd[i] = r;
      for (int64_t j = 0; j < D; ++j) Y[i * D + j] = w[j] * (x[j] * r);
    }
  });
}

void rmsNormBackward(int64_t rows, int64_t M, int64_t D, const float* dY, const float* X, const float* rstd,
                     const float* w, float* dX) {
  parallelRanges(rows, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* x = X + (i % M) * D;
      const float* dy = dY + i * D;
      const double r = rstd[i % M];
      double dot = 0;  // Σ w·dy·x
      for (int64_t j = 0; j < D; ++j) dot += static_cast<double>(w[j]) * dy[j] * x[j];
      const double k = dot * r * r * r / static_cast<double>(D);
      for (int64_t j = 0; j < D; ++j)
        dX[i * D + j] += static_cast<float>(r * w[j] * dy[j] - k * x[j]);
    }
  });
}

void layerForward(const Qwen2Shape& s, const float* W, const Qwen2Lora& lora, const float* Xin, Qwen2LayerActs& x,
                  float* Xout, Qwen2Arena& a) {
  const Qwen2Config& c = s.c;
  const Qwen2LayerOffsets& o = s.off;
  const int64_t M = s.M, D = c.D, I = c.I;
  rmsNormForward(M, D, c.eps, Xin, W + o.inNorm, x.Y1, x.r1);
  linearForward(c, 0, M, x.Y1, W + o.qW, W + o.qB, lora, x.U[0], x.Q);
  linearForward(c, 1, M, x.Y1, W + o.kW, W + o.kB, lora, x.U[1], x.K);
  linearForward(c, 2, M, x.Y1, W + o.vW, W + o.vB, lora, x.U[2], x.V);
  rope(s, x.Q, M, c.qDim(), false);
  rope(s, x.K, M, c.kvDim(), false);
  attentionForward(s, x.Q, x.K, x.V, x.Att, x.rowMax, x.rowSum, a);
  linearForward(c, 3, M, x.Att, W + o.oW, nullptr, lora, x.U[3], x.X1);
  parallelRanges(M * D, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) x.X1[i] += Xin[i];
  });
  rmsNormForward(M, D, c.eps, x.X1, W + o.postNorm, x.Y2, x.r2);
  linearForward(c, 4, M, x.Y2, W + o.gate, nullptr, lora, x.U[4], x.Gt);
  linearForward(c, 5, M, x.Y2, W + o.up, nullptr, lora, x.U[5], x.Up);
  parallelRanges(M * I, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) x.Act[i] = x.Gt[i] * sigmoid(x.Gt[i]) * x.Up[i];
  });
  linearForward(c, 6, M, x.Act, W + o.down, nullptr, lora, x.U[6], Xout);
  parallelRanges(M * D, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) Xout[i] += x.X1[i];
  });
}

namespace {

// dX (streams·M × in) = beta·dX + dY·W (+ s·(dY·B)·A); LoRA weight gradients per stream
// dB = s·dYᵀ·U, dA = s·(dY·B)ᵀ·X into out.g[stream] (a stream with a null set is skipped).
void linearBackward(const Qwen2Shape& s, int64_t layer, int linear, int streams, const float* X, const float* W,
                    const Qwen2Lora& lora, const float* U, const float* dY, float* dX, float beta,
                    const Qwen2GradOut& out, Qwen2Arena& a) {
  const Qwen2Config& c = s.c;
  const int64_t in = c.linearIn(linear), n = c.linearOut(linear), r = c.r, M = s.M, SM = streams * M;
  gemm(SM, in, n, 1.0f, mat(dY, n), mat(W, in), beta, dX, in);
  if (!lora.A[linear]) return;
  const size_t mark = a.used;
  float* Vt = a.take(SM * r);
  const float sl = c.loraScale();
  gemm(SM, r, n, 1.0f, mat(dY, n), mat(lora.B[linear], r), 0.0f, Vt, r);  // V = dY·B
  gemm(SM, in, r, sl, mat(Vt, r), mat(lora.A[linear], in), 1.0f, dX, in);  // dX += s·V·A
  for (int st = 0; st < streams; ++st) {
    float* g = out.g[st];
    if (!g) continue;
    gemm(n, r, M, sl * out.alpha, mat(dY + st * M * n, n, true), mat(U, r), out.beta, g + (*out.loraB)[layer][linear], r);
    gemm(r, in, M, sl * out.alpha, mat(Vt + st * M * r, r, true), mat(X, in), out.beta, g + (*out.loraA)[layer][linear], in);
  }
  a.used = mark;
}

}  // namespace

void layerBackward(const Qwen2Shape& s, int64_t layer, int streams, const float* W, const Qwen2Lora& lora,
                   const float* Xin, const Qwen2LayerActs& x, float* G, const Qwen2GradOut& out, Qwen2Arena& a) {
  const Qwen2Config& c = s.c;
  const Qwen2LayerOffsets& o = s.off;
  const int64_t M = s.M, D = c.D, I = c.I, SM = streams * M;
  const size_t mark = a.used;
  float* dAct = a.take(SM * I);
  float* dUp = a.take(SM * I);
  float* dY = a.take(SM * D);
  float* dAtt = a.take(SM * c.qDim());
  float* dQ = a.take(SM * c.qDim());
  float* dK = a.take(SM * c.kvDim());
  float* dV = a.take(SM * c.kvDim());
  // MLP: G = d out (and the residual's d x1).
  linearBackward(s, layer, 6, streams, x.Act, W + o.down, lora, x.U[6], G, dAct, 0.0f, out, a);
  parallelRanges(SM, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0 * I; i < i1 * I; ++i) {
      const int64_t k = i % (M * I);
      const float g = x.Gt[k], sg = sigmoid(g), da = dAct[i];
      dUp[i] = da * (g * sg);
      dAct[i] = da * x.Up[k] * (sg * (1.0f + g * (1.0f - sg)));  // d gate
    }
  });
  linearBackward(s, layer, 4, streams, x.Y2, W + o.gate, lora, x.U[4], dAct, dY, 0.0f, out, a);
  linearBackward(s, layer, 5, streams, x.Y2, W + o.up, lora, x.U[5], dUp, dY, 1.0f, out, a);
  rmsNormBackward(SM, M, D, dY, x.X1, x.r2, W + o.postNorm, G);  // G = d x1
  // Attention.
  linearBackward(s, layer, 3, streams, x.Att, W + o.oW, lora, x.U[3], G, dAtt, 0.0f, out, a);
  attentionBackward(s, streams, x.Q, x.K, x.V, x.rowMax, x.rowSum, dAtt, dQ, dK, dV, a);
  // RoPE backward: the inverse rotation (row mod T is the position in every stream block).
  rope(s, dQ, SM, c.qDim(), true);
  rope(s, dK, SM, c.kvDim(), true);
  linearBackward(s, layer, 0, streams, x.Y1, W + o.qW, lora, x.U[0], dQ, dY, 0.0f, out, a);
  linearBackward(s, layer, 1, streams, x.Y1, W + o.kW, lora, x.U[1], dK, dY, 1.0f, out, a);
  linearBackward(s, layer, 2, streams, x.Y1, W + o.vW, lora, x.U[2], dV, dY, 1.0f, out, a);
  rmsNormBackward(SM, M, D, dY, Xin, x.r1, W + o.inNorm, G);  // G = d x
  a.used = mark;
}

}  // namespace craftgrad
