// AdapterPolicy on the CPU (math in ARCHITECTURE.md §4; tensor layout in core/model_desc.h).
//
// Forward per block: W_eff = W + s·B·A (s = α/r, formed once per call: D²r flops, and with
// B = 0 it is W bit for bit, so B = 0 gives retention loss exactly 0), z = h·W_effᵀ + b,
// h ← h + gelu(z). GELU is the tanh form, PyTorch's nn.GELU(approximate='tanh') (gelu_math.h).
// Backward: the action and retention upstream gradients are stacked as S = 2 row blocks
// (2·M rows) so that gelu', the input-gradient product dZ·W_eff and dZ·B each run once
// for both losses; only the per-loss weight gradients are separate products.
#include "model_cpu.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "../core/gelu_math.h"
#include "gemm.h"
#include "parallel.h"

namespace craftgrad {
namespace {


MatRef mat(const float* p, int64_t ld, bool trans = false) { return MatRef{p, ld, trans}; }

// The per-call scratch memory, reused by the calling thread across calls.
struct Arena {
  std::vector<float> buf;
  size_t used = 0;
  float* take(int64_t n) {
    float* p = buf.data() + used;
    used += static_cast<size_t>((n + 15) & ~int64_t{15});
    return p;
  }
};

// W_eff = W + s·B·A into out (D×D).
void formWeff(const ModelConfig& c, const float* W, const float* A, const float* B, float* out) {
  std::memcpy(out, W, sizeof(float) * c.D * c.D);
  gemm(c.D, c.D, c.r, c.loraScale(), mat(B, c.r), mat(A, c.D), 1.0f, out, c.D);
}

// Z = H·W_effᵀ + b; Hn = H + gelu(Z). Z keeps the pre-activation for the backward.
void blockForward(const ModelConfig& c, int64_t M, const float* H, const float* Weff, const float* b, float* Z,
                  float* Hn) {
  const int64_t D = c.D;
  gemm(M, D, D, 1.0f, mat(H, D), mat(Weff, D, true), 0.0f, Z, D);
  const GemmKernel& k = gemmKernel();
  parallelRanges(M, 64, [&](int64_t r0, int64_t r1) {
    k.biasGeluResidual(Z + r0 * D, b, H + r0 * D, Hn + r0 * D, r1 - r0, D);
  });
}

// Pools H (batch, T, D) over tokens into f[:, off .. off+D) (row stride F); for max pooling
// also records the first arg-max token of each (sample, column).
void pool(const ModelConfig& c, int64_t batch, const float* H, float* f, int64_t off, int32_t* argmax) {
  const int64_t T = c.T, D = c.D, F = c.F();
  for (int64_t b = 0; b < batch; ++b) {
    const float* h = H + b * T * D;
    float* out = f + b * F + off;
    if (c.pool == Pooling::Mean) {
      for (int64_t d = 0; d < D; ++d) {
        double s = 0;
        for (int64_t t = 0; t < T; ++t) s += h[t * D + d];
        out[d] = static_cast<float>(s / static_cast<double>(T));
      }
    } else {
      for (int64_t d = 0; d < D; ++d) {
        float best = h[d];
        int32_t arg = 0;
        for (int64_t t = 1; t < T; ++t)
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

// G (batch, T, D) += pooling backward of dF[:, off .. off+D).
void poolBackward(const ModelConfig& c, int64_t batch, const float* dF, int64_t off, const int32_t* argmax,
                  float* G) {
  const int64_t T = c.T, D = c.D, F = c.F();
  for (int64_t b = 0; b < batch; ++b) {
    const float* dp = dF + b * F + off;
    float* g = G + b * T * D;
    if (c.pool == Pooling::Mean) {
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < D; ++d) g[t * D + d] += dp[d] / static_cast<float>(T);
    } else {
      for (int64_t d = 0; d < D; ++d) g[argmax[b * D + d] * D + d] += dp[d];
    }
  }
}

// Features of the forward through the first activeBlocks() blocks with LoRA weights
// `lora` (params or anchor; same offsets). Keeps H_l and Z_l when `H`/`Z` hold
// (active+1) and (active) slices; otherwise ping-pongs through two slices.
void featuresForward(const ModelConfig& c, const ModelLayout& lay, const float* lora, const float* frozen,
                     const float* tokens, int64_t batch, float* Weff, float* H, float* Z, bool keep, float* f,
                     int32_t* argR, int32_t* argAq) {
  const int64_t M = batch * c.T, MD = M * c.D, n = c.activeBlocks();
  std::memcpy(H, tokens, sizeof(float) * MD);
  for (int64_t l = 0; l < n; ++l) {
    float* Wl = keep ? Weff + l * c.D * c.D : Weff;
    formWeff(c, frozen + lay.baseW[l], lora + lay.loraA[l], lora + lay.loraB[l], Wl);
    const float* Hin = keep ? H + l * MD : H + (l % 2) * MD;
    float* Hout = keep ? H + (l + 1) * MD : H + ((l + 1) % 2) * MD;
    blockForward(c, M, Hin, Wl, frozen + lay.baseB[l], keep ? Z + l * MD : Z, Hout);
    if (l + 1 == c.m && c.usesRaw()) pool(c, batch, Hout, f, c.rawOffset(), argR);
    if (l + 1 == c.L && c.usesAq()) pool(c, batch, Hout, f, c.aqOffset(), argAq);
  }
}

// g = beta·g + scale·v for a vector of n (beta 0 or 1), with v given in double.
void addScaled(float* g, const double* v, int64_t n, float scale, bool accumulate) {
  for (int64_t i = 0; i < n; ++i) {
    const float t = scale * static_cast<float>(v[i]);
    g[i] = accumulate ? g[i] + t : t;
  }
}

}  // namespace

ModelStepResult modelStepCpu(const ModelConfig& c, const ModelStepArgs& a) {
  const ModelLayout lay = modelLayout(c);
  const int64_t B = a.batch, T = c.T, D = c.D, r = c.r, F = c.F(), Hd = c.H, KA = c.actionDim();
  const int64_t M = B * T, MD = M * D, n = c.activeBlocks();
  const bool withRet = a.mode == ModelMode::Craft || a.mode == ModelMode::EvalRet;
  const bool withGrad = a.mode == ModelMode::Craft || a.mode == ModelMode::Baseline;
  const int64_t S = a.mode == ModelMode::Craft ? 2 : 1;  // backward streams
  const float* P = a.params;

  thread_local Arena arena;
  const int64_t need = (n * D * D + D * D) + (n + 1) * MD + n * MD + 2 * MD + MD + 2 * B * F + 2 * B * Hd +
                       2 * B * KA + 2 * S * MD + MD + M * r + S * M * r + S * B * F + B * Hd + 4 * B * D + 64 * 16;
  if (arena.buf.size() < static_cast<size_t>(need)) arena.buf.resize(need);
  arena.used = 0;
  float* Weff = arena.take(n * D * D);
  float* WeffAnchor = arena.take(D * D);
  float* Hs = arena.take((n + 1) * MD);
  float* Zs = arena.take(n * MD);
  float* Hping = arena.take(2 * MD);
  float* Zping = arena.take(MD);
  float* f = arena.take(B * F);
  float* fAnchor = arena.take(B * F);
  float* Y1 = arena.take(B * Hd);
  float* G1 = arena.take(B * Hd);
  float* O = arena.take(B * KA);
  float* dO = arena.take(B * KA);
  int32_t* argR = reinterpret_cast<int32_t*>(arena.take(B * D));
  int32_t* argAq = reinterpret_cast<int32_t*>(arena.take(B * D));
  int32_t* argR0 = reinterpret_cast<int32_t*>(arena.take(B * D));
  int32_t* argAq0 = reinterpret_cast<int32_t*>(arena.take(B * D));

  // ---- forward (current weights, activations kept) ----
  featuresForward(c, lay, P, a.frozen, a.tokens, B, Weff, Hs, Zs, true, f, argR, argAq);
  gemm(B, Hd, F, 1.0f, mat(f, F), mat(P + lay.fc1w, F, true), 0.0f, Y1, Hd);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < Hd; ++j) {
      Y1[i * Hd + j] += P[lay.fc1b + j];
      G1[i * Hd + j] = gelu(Y1[i * Hd + j]);
    }
  gemm(B, KA, Hd, 1.0f, mat(G1, Hd), mat(P + lay.fc2w, Hd, true), 0.0f, O, KA);
  ModelStepResult res;
  const float invAct = 1.0f / static_cast<float>(B * KA);
  double act = 0;
  for (int64_t i = 0; i < B; ++i)
    for (int64_t j = 0; j < KA; ++j) {
      const float o = O[i * KA + j] + P[lay.fc2b + j];
      const float e = o - a.actions[i * KA + j];
      act += std::fabs(static_cast<double>(e));
      dO[i * KA + j] = e > 0 ? invAct : (e < 0 ? -invAct : 0.0f);  // PyTorch: sign(0) = 0
    }
  res.actionLoss = act / static_cast<double>(B * KA);

  // ---- anchor forward: no grad, anchor LoRA weights read in place ----
  if (withRet) {
    featuresForward(c, lay, a.anchor, a.frozen, a.tokens, B, WeffAnchor, Hping, Zping, false, fAnchor, argR0, argAq0);
    double ret = 0;
    for (int64_t i = 0; i < B * F; ++i) {
      const double d = static_cast<double>(f[i]) - static_cast<double>(fAnchor[i]);
      ret += d * d;
    }
    res.retentionLoss = ret / static_cast<double>(B * F);
  }
  if (!withGrad) return res;

  // ---- head backward (action stream only: the retention loss does not see the head) ----
  const float sc = a.scale;
  const float beta = a.accumulate ? 1.0f : 0.0f;
  float* gA = a.gAct;
  float* dF = arena.take(S * B * F);
  float* dY1 = arena.take(B * Hd);
  gemm(KA, Hd, B, sc, mat(dO, KA, true), mat(G1, Hd), beta, gA + lay.fc2w, Hd);
  {
    std::vector<double> s(KA, 0.0);
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < KA; ++j) s[j] += dO[i * KA + j];
    addScaled(gA + lay.fc2b, s.data(), KA, sc, a.accumulate);
  }
  gemm(B, Hd, KA, 1.0f, mat(dO, KA), mat(P + lay.fc2w, Hd), 0.0f, dY1, Hd);
  for (int64_t i = 0; i < B * Hd; ++i) dY1[i] *= geluGrad(Y1[i]);
  gemm(Hd, F, B, sc, mat(dY1, Hd, true), mat(f, F), beta, gA + lay.fc1w, F);
  {
    std::vector<double> s(Hd, 0.0);
    for (int64_t i = 0; i < B; ++i)
      for (int64_t j = 0; j < Hd; ++j) s[j] += dY1[i * Hd + j];
    addScaled(gA + lay.fc1b, s.data(), Hd, sc, a.accumulate);
  }
  gemm(B, F, Hd, 1.0f, mat(dY1, Hd), mat(P + lay.fc1w, F), 0.0f, dF, F);
  if (S == 2) {
    float* dFr = dF + B * F;
    const float k = 2.0f / static_cast<float>(B * F);
    for (int64_t i = 0; i < B * F; ++i) dFr[i] = k * (f[i] - fAnchor[i]);
    if (!a.accumulate) std::memset(a.gRet + lay.fc1w, 0, sizeof(float) * (lay.paramCount - lay.fc1w));
  }
  float* gOut[2] = {a.gAct, a.gRet};

  // ---- blocks backward, both streams stacked as S row blocks of M rows ----
  float* G = arena.take(S * MD);
  float* dZ = arena.take(S * MD);
  float* u = arena.take(M * r);
  float* V = arena.take(S * M * r);
  float* gd = arena.take(MD);  // gelu'(Z_l), shared by both streams
  std::memset(G, 0, sizeof(float) * S * MD);
  const float sl = c.loraScale() * sc;
  for (int64_t l = n - 1; l >= 0; --l) {
    for (int64_t s = 0; s < S; ++s) {
      if (l + 1 == c.L && c.usesAq()) poolBackward(c, B, dF + s * B * F, c.aqOffset(), argAq, G + s * MD);
      if (l + 1 == c.m && c.usesRaw()) poolBackward(c, B, dF + s * B * F, c.rawOffset(), argR, G + s * MD);
    }
    const float* Zl = Zs + l * MD;
    const float* Hl = Hs + l * MD;
    parallelRanges(M, 64, [&](int64_t r0, int64_t r1) {
      gemmKernel().geluGrad(Zl + r0 * D, gd + r0 * D, (r1 - r0) * D);
      for (int64_t s = 0; s < S; ++s)
        for (int64_t i = r0 * D; i < r1 * D; ++i) dZ[s * MD + i] = G[s * MD + i] * gd[i];
    });
    const float* Al = P + lay.loraA[l];
    const float* Bl = P + lay.loraB[l];
    gemm(M, r, D, 1.0f, mat(Hl, D), mat(Al, D, true), 0.0f, u, r);           // u = H·Aᵀ
    gemm(S * M, r, D, 1.0f, mat(dZ, D), mat(Bl, r), 0.0f, V, r);             // V = dZ·B (stacked)
    for (int64_t s = 0; s < S; ++s) {
      gemm(D, r, M, sl, mat(dZ + s * MD, D, true), mat(u, r), beta, gOut[s] + lay.loraB[l], r);  // dB = s·dZᵀu
      gemm(r, D, M, sl, mat(V + s * M * r, r, true), mat(Hl, D), beta, gOut[s] + lay.loraA[l], D);  // dA = s·Vᵀh
    }
    if (l > 0) gemm(S * M, D, D, 1.0f, mat(dZ, D), mat(Weff + l * D * D, D), 1.0f, G, D);  // G += dZ·W_eff
  }
  // Blocks the features never see (raw_only: after m) get zero gradients.
  if (!a.accumulate)
    for (int64_t l = n; l < c.L; ++l)
      for (int64_t s = 0; s < S; ++s) {
        std::memset(gOut[s] + lay.loraA[l], 0, sizeof(float) * r * D);
        std::memset(gOut[s] + lay.loraB[l], 0, sizeof(float) * D * r);
      }
  return res;
}

}  // namespace craftgrad
