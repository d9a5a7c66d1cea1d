// The Qwen2 policy step on the CPU (ARCHITECTURE.md §4b; layout in core/qwen2_desc.h).
//
// Forward: the sequence [prefix; embed(input_ids); action_queries] through the L layers
// (activations kept for the backward), the final RMSNorm, the per-query action head and
// the L1 action loss; the bridge features f = pool(hidden_states[m] over the span) and/or
// pool(final hidden states at the queries). The anchor forward runs the same code with the
// anchor's LoRA factors and queries read in place (layers after m skipped when only C_R
// is used). Backward: the action and retention gradients travel stacked as two row
// blocks of M rows through every layer (qwen2_layer.cc); the retention block joins at
// the final norm and at layer m, and is left out of the layers it cannot reach.
#include "qwen2_cpu.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "../core/gelu_math.h"
#include "gemm.h"
#include "parallel.h"
#include "qwen2_parts.h"

namespace craftgrad {
namespace {

MatRef mat(const float* p, int64_t ld, bool trans = false) { return MatRef{p, ld, trans}; }

Qwen2Lora loraOf(const Qwen2Config& c, const Qwen2Layout& lay, const float* base, int64_t l) {
  Qwen2Lora x{};
  for (int i = 0; i < kQwen2Linears; ++i)
    if (c.targeted(i)) {
      x.A[i] = base + lay.loraA[l][i];
      x.B[i] = base + lay.loraB[l][i];
    }
  return x;
}

// Pools tokens [t0, t0+n) of H (B, T, D) into f[:, off .. off+D) (row stride F); max pooling
// records the first arg-max token (as torch.max does) of each (sample, column).
void pool(const Qwen2Shape& s, const float* H, int64_t t0, int64_t n, float* f, int64_t off, int32_t* argmax) {
  const int64_t T = s.T, D = s.c.D, F = s.c.F();
  for (int64_t b = 0; b < s.B; ++b) {
    const float* h = H + (b * T + t0) * D;
    float* out = f + b * F + off;
    for (int64_t d = 0; d < D; ++d) {
      if (s.c.pool == Pooling::Mean) {
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

// G (B, T, D) at tokens [t0, t0+n) += the pooling backward of dF[:, off .. off+D).
void poolBackward(const Qwen2Shape& s, const float* dF, int64_t t0, int64_t n, int64_t off, const int32_t* argmax,
                  float* G) {
  const int64_t T = s.T, D = s.c.D, F = s.c.F();
  for (int64_t b = 0; b < s.B; ++b) {
    const float* dp = dF + b * F + off;
    float* g = G + (b * T + t0) * D;
    if (s.c.pool == Pooling::Mean) {
      const float inv = 1.0f / static_cast<float>(n);
      for (int64_t t = 0; t < n; ++t)
        for (int64_t d = 0; d < D; ++d) g[t * D + d] += dp[d] * inv;
    } else {
      for (int64_t d = 0; d < D; ++d) g[argmax[b * D + d] * D + d] += dp[d];
    }
  }
}

// g = scale·v (or g += scale·v) for n values given in double.
void writeGrad(float* g, const double* v, int64_t n, float scale, bool accumulate) {
  for (int64_t i = 0; i < n; ++i) {
    const float t = scale * static_cast<float>(v[i]);
    g[i] = accumulate ? g[i] + t : t;
  }
}

struct Buffers {
  float *Hs, *HN, *rN, *Hping, *HN0, *rN0, *f, *fA, *Z0, *Z1, *G1, *O, *dO, *dZ1, *dZ0, *dHN, *G, *dF;
  int32_t *argR, *argAq, *argR0, *argAq0;
  std::vector<Qwen2LayerActs> acts;  // L slots with a backward, else one
  Qwen2LayerActs anchorActs;
};

int32_t* ints(float* p) { return reinterpret_cast<int32_t*>(p); }

void plan(const Qwen2Shape& s, bool keep, bool withRet, int streams, Qwen2Arena& a, Buffers& x) {
  const Qwen2Config& c = s.c;
  const int64_t M = s.M, D = c.D, MD = M * D, BQ = s.B * c.Q, BF = s.B * c.F();
  x.Hs = a.take(keep ? (c.L + 1) * MD : 2 * MD);
  x.HN = a.take(MD);
  x.rN = a.take(M);
  x.f = a.take(BF);
  x.fA = a.take(BF);
  x.argR = ints(a.take(s.B * D));
  x.argAq = ints(a.take(s.B * D));
  x.argR0 = ints(a.take(s.B * D));
  x.argAq0 = ints(a.take(s.B * D));
  x.Z0 = a.take(BQ * D);
  x.Z1 = a.take(BQ * c.Hh);
  x.G1 = a.take(BQ * c.Hh);
  x.O = a.take(BQ * c.A);
  x.dO = a.take(BQ * c.A);
  x.acts.assign(keep ? c.L : 1, Qwen2LayerActs{});
  for (Qwen2LayerActs& l : x.acts) allocLayerActs(s, a, l);
  x.Hping = x.HN0 = x.rN0 = nullptr;
  if (withRet) {
    x.Hping = a.take(2 * MD);
    x.HN0 = a.take(MD);
    x.rN0 = a.take(M);
    if (keep) allocLayerActs(s, a, x.anchorActs);
    else x.anchorActs = x.acts[0];
  }
  if (keep) {
    x.dZ1 = a.take(BQ * c.Hh);
    x.dZ0 = a.take(BQ * D);
    x.dHN = a.take(streams * MD);
    x.G = a.take(streams * MD);
    x.dF = a.take(BF);
  }
}

// Floats the layers take on top of plan()'s and give back (layerBackward, attention).
size_t scratchFloats(const Qwen2Shape& s, int streams) {
  const Qwen2Config& c = s.c;
  const int64_t SM = streams * s.M;
  return static_cast<size_t>(SM * (2 * c.I + c.D + 2 * c.qDim() + 2 * c.kvDim() + c.r) + 3 * s.T * s.T + 16 * 16);
}

// The forward of `layers` layers with the LoRA factors and queries at `w` (params or
// anchor, same offsets). Keeps every layer's input in Hs when `keep`, else ping-pongs.
// Pools C_R (when it is within reach) and, after all L layers, the final norm and C_AQ.
void forward(const Qwen2Shape& s, const Qwen2Layout& lay, const Qwen2StepArgs& a, const float* w, int64_t layers,
             bool keep, float* Hs, std::vector<Qwen2LayerActs>& acts, float* HN, float* rN, float* f, int32_t* argR,
             int32_t* argAq, Qwen2Arena& arena) {
  const Qwen2Config& c = s.c;
  const int64_t T = s.T, D = c.D, MD = s.M * D, P = c.P, S = c.S;
  for (int64_t b = 0; b < s.B; ++b) {
    float* x = Hs + b * T * D;
    if (P) std::memcpy(x, a.prefix + b * P * D, sizeof(float) * P * D);
    for (int64_t t = 0; t < S; ++t)
      std::memcpy(x + (P + t) * D, a.embed + static_cast<int64_t>(a.inputIds[b * S + t]) * D, sizeof(float) * D);
    std::memcpy(x + (P + S) * D, w + lay.queries, sizeof(float) * c.Q * D);
  }
  const bool raw = c.usesRaw();
  if (raw && c.m == 0) pool(s, Hs, 0, c.spanTokens(), f, c.rawOffset(), argR);
  float* last = Hs;
  for (int64_t l = 0; l < layers; ++l) {
    const float* Xin = keep ? Hs + l * MD : Hs + (l % 2) * MD;
    float* Xout = keep ? Hs + (l + 1) * MD : Hs + ((l + 1) % 2) * MD;
    layerForward(s, a.layers[l], loraOf(c, lay, w, l), Xin, acts[keep ? l : 0], Xout, arena);
    if (raw && l + 1 == c.m && c.m < c.L) pool(s, Xout, 0, c.spanTokens(), f, c.rawOffset(), argR);
    last = Xout;
  }
  if (layers < c.L) return;
  rmsNormForward(s.M, D, c.eps, last, a.finalNorm, HN, rN);
  if (raw && c.m == c.L) pool(s, HN, 0, c.spanTokens(), f, c.rawOffset(), argR);
  if (c.usesAq()) pool(s, HN, T - c.Q, c.Q, f, c.aqOffset(), argAq);
}

}  // namespace

ModelStepResult qwen2StepCpu(const Qwen2Config& c, const Qwen2StepArgs& a) {
  const Qwen2Layout lay = qwen2Layout(c);
  const Qwen2Shape s(c, a.batch);
  const int64_t B = a.batch, T = s.T, M = s.M, D = c.D, MD = M * D, Q = c.Q, Ad = c.A, Hh = c.Hh, F = c.F();
  const int64_t BQ = B * Q, qTok = T - Q;
  const bool withRet = a.mode == ModelMode::Craft || a.mode == ModelMode::EvalRet;
  const bool withGrad = a.mode == ModelMode::Craft || a.mode == ModelMode::Baseline;
  const int streams = a.mode == ModelMode::Craft ? 2 : 1;
  const float* P = a.params;

  thread_local Qwen2Arena arena;
  Buffers x;
  arena.counting = true;
  arena.used = 0;
  plan(s, withGrad, withRet, streams, arena, x);
  const size_t need = arena.used + scratchFloats(s, streams);
  if (arena.buf.size() < need) arena.buf.resize(need);
  arena.counting = false;
  arena.used = 0;
  plan(s, withGrad, withRet, streams, arena, x);

  // ---- forward (current weights) and the action head ----
  forward(s, lay, a, P, c.L, withGrad, x.Hs, x.acts, x.HN, x.rN, x.f, x.argR, x.argAq, arena);
  for (int64_t b = 0; b < B; ++b) std::memcpy(x.Z0 + b * Q * D, x.HN + (b * T + qTok) * D, sizeof(float) * Q * D);
  gemm(BQ, Hh, D, 1.0f, mat(x.Z0, D), mat(P + lay.fc1w, D, true), 0.0f, x.Z1, Hh);
  for (int64_t i = 0; i < BQ; ++i)
    for (int64_t j = 0; j < Hh; ++j) {
      x.Z1[i * Hh + j] += P[lay.fc1b + j];
      x.G1[i * Hh + j] = gelu(x.Z1[i * Hh + j]);
    }
  gemm(BQ, Ad, Hh, 1.0f, mat(x.G1, Hh), mat(P + lay.fc2w, Hh, true), 0.0f, x.O, Ad);
  ModelStepResult res;
  const int64_t nAct = BQ * Ad;
  const float invAct = 1.0f / static_cast<float>(nAct);
  double act = 0;
  for (int64_t i = 0; i < BQ; ++i)
    for (int64_t j = 0; j < Ad; ++j) {
      const float e = (x.O[i * Ad + j] + P[lay.fc2b + j]) - a.actions[i * Ad + j];
      act += std::fabs(static_cast<double>(e));
      x.dO[i * Ad + j] = e > 0 ? invAct : (e < 0 ? -invAct : 0.0f);  // PyTorch: sign(0) = 0
    }
  res.actionLoss = act / static_cast<double>(nAct);

  // ---- anchor forward: no gradient, anchor LoRA factors and queries in place ----
  if (withRet) {
    const int64_t layers = c.usesAq() ? c.L : c.m;
    std::vector<Qwen2LayerActs> one{x.anchorActs};
    forward(s, lay, a, a.anchor, layers, false, x.Hping, one, x.HN0, x.rN0, x.fA, x.argR0, x.argAq0, arena);
    double ret = 0;
    for (int64_t i = 0; i < B * F; ++i) {
      const double d = static_cast<double>(x.f[i]) - static_cast<double>(x.fA[i]);
      ret += d * d;
    }
    res.retentionLoss = ret / static_cast<double>(B * F);
  }
  if (!withGrad) return res;

  // ---- head backward (the action stream only: the retention loss never sees the head) ----
  const float sc = a.scale, beta = a.accumulate ? 1.0f : 0.0f;
  float* gA = a.gAct;
  gemm(Ad, Hh, BQ, sc, mat(x.dO, Ad, true), mat(x.G1, Hh), beta, gA + lay.fc2w, Hh);
  {
    std::vector<double> v(Ad, 0.0);
    for (int64_t i = 0; i < BQ; ++i)
      for (int64_t j = 0; j < Ad; ++j) v[j] += x.dO[i * Ad + j];
    writeGrad(gA + lay.fc2b, v.data(), Ad, sc, a.accumulate);
  }
  gemm(BQ, Hh, Ad, 1.0f, mat(x.dO, Ad), mat(P + lay.fc2w, Hh), 0.0f, x.dZ1, Hh);
  for (int64_t i = 0; i < BQ * Hh; ++i) x.dZ1[i] *= geluGrad(x.Z1[i]);
  gemm(Hh, D, BQ, sc, mat(x.dZ1, Hh, true), mat(x.Z0, D), beta, gA + lay.fc1w, D);
  {
    std::vector<double> v(Hh, 0.0);
    for (int64_t i = 0; i < BQ; ++i)
      for (int64_t j = 0; j < Hh; ++j) v[j] += x.dZ1[i * Hh + j];
    writeGrad(gA + lay.fc1b, v.data(), Hh, sc, a.accumulate);
  }
  gemm(BQ, D, Hh, 1.0f, mat(x.dZ1, Hh), mat(P + lay.fc1w, D), 0.0f, x.dZ0, D);
  if (streams == 2 && !a.accumulate) std::memset(a.gRet + lay.fc1w, 0, sizeof(float) * (lay.paramCount - lay.fc1w));

  // ---- d(final hidden states): the head's at the queries; the retention features' ----
  std::memset(x.dHN, 0, sizeof(float) * streams * MD);
  for (int64_t b = 0; b < B; ++b) std::memcpy(x.dHN + (b * T + qTok) * D, x.dZ0 + b * Q * D, sizeof(float) * Q * D);
  if (streams == 2) {
    const float k = 2.0f / static_cast<float>(B * F);
    for (int64_t i = 0; i < B * F; ++i) x.dF[i] = k * (x.f[i] - x.fA[i]);
    float* dRet = x.dHN + MD;
    if (c.usesAq()) poolBackward(s, x.dF, qTok, Q, c.aqOffset(), x.argAq, dRet);
    if (c.usesRaw() && c.m == c.L) poolBackward(s, x.dF, 0, c.spanTokens(), c.rawOffset(), x.argR, dRet);
  }
  std::memset(x.G, 0, sizeof(float) * streams * MD);
  rmsNormBackward(streams * M, M, D, x.dHN, x.Hs + c.L * MD, x.rN, a.finalNorm, x.G);

  // ---- layers, last to first ----
  const Qwen2GradOut base{{a.gAct, nullptr}, sc, beta, &lay.loraA, &lay.loraB};
  bool retLive = false;
  for (int64_t l = c.L - 1; l >= 0; --l) {
    if (streams == 2 && c.usesRaw() && l + 1 == c.m && c.m < c.L)
      poolBackward(s, x.dF, 0, c.spanTokens(), c.rawOffset(), x.argR, x.G + MD);
    retLive = streams == 2 && (c.usesAq() || l + 1 <= c.m);
    Qwen2GradOut out = base;
    if (retLive) out.g[1] = a.gRet;
    else if (streams == 2 && !a.accumulate)
      for (int i = 0; i < kQwen2Linears; ++i)
        if (c.targeted(i)) {
          std::memset(a.gRet + lay.loraA[l][i], 0, sizeof(float) * c.r * c.linearIn(i));
          std::memset(a.gRet + lay.loraB[l][i], 0, sizeof(float) * c.linearOut(i) * c.r);
        }
    layerBackward(s, l, retLive ? 2 : 1, a.layers[l], loraOf(c, lay, P, l), x.Hs + l * MD, x.acts[l], x.G, out, arena);
  }

  // ---- action_queries: d(input sequence) at the query tokens, summed over the batch ----
  for (int st = 0; st < streams; ++st) {
    float* g = st == 0 ? a.gAct : a.gRet;
    std::vector<double> v(Q * D, 0.0);
    if (st == 0 || retLive)
      for (int64_t b = 0; b < B; ++b) {
        const float* row = x.G + st * MD + (b * T + qTok) * D;
        for (int64_t i = 0; i < Q * D; ++i) v[i] += row[i];
      }
    writeGrad(g + lay.queries, v.data(), Q * D, sc, a.accumulate);
  }
  return res;
}

}  // namespace craftgrad
