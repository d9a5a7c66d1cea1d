// The Qwen2 policy (ARCHITECTURE.md §4b; layout in core/qwen2_desc.h), one driver for every
// backend over core/layers.h.
//
// Forward: the sequence [prefix; embed(input_ids); action_queries] through the L decoder
// layers (qwen2_decoder.h; activations kept for the backward), the final RMSNorm, the
// per-query action head (action_head.h) and the L1 loss; the bridge features
// f = pool(hidden_states[m] over the span) and/or pool(final hidden states at the queries).
// The anchor forward runs the same layers with the anchor's LoRA factors and queries read
// in place (the layers after m skipped when only C_R is used). Backward: the action and
// retention gradients travel stacked as two row blocks of M rows through every layer; the
// retention block joins at the final norm and at layer m, and is left out of the layers it
// cannot reach.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "action_head.h"
#include "models.h"
#include "qwen2_decoder.h"
#include "step.h"
#include "workspace.h"

namespace craftgrad {
namespace {

struct Buffers {
  const float *cosT, *sinT, *prefix, *actions;
  const int32_t* ids;
  float *Hs, *HN, *rN, *Hping, *HN0, *rN0, *f, *fA, *Z0, *dZ1, *dZ0, *dHN, *G, *dF;
  int32_t *argR, *argAq, *argR0, *argAq0;
  ActionHeadActs head;
  std::vector<Qwen2LayerActs> acts;  // L slots with a backward, else one
  Qwen2LayerActs anchorActs;
  Qwen2LayerScratch scratch;
  double *terms, *losses;
  float *frozenVec, *finalNorm;  // bf16 frozen weights: the vectors widened (else null)
};

class Qwen2PolicyStep {
 public:
  Qwen2PolicyStep(Layers& L, const Qwen2Config& c, const Qwen2StepArgs& a)
      : L_(L), c_(c), a_(a), lay_(qwen2Layout(c)), s_(c, a.batch), mode_(stepMode(a.mode)) {
    s_.attention.precision = a.precision;
  }

  ModelStepResult run();

 private:
  void plan(Workspace& w, Buffers& x);
  Qwen2Lora loraOf(const float* base, int64_t l) const;
  PoolShape poolAt(int64_t t0, int64_t n, int64_t off) const {
    return {s_.B, s_.T, c_.D, c_.F(), t0, n, off, c_.pool};
  }
  void forward(const float* w, int64_t layers, bool keep, float* Hs, std::vector<Qwen2LayerActs>& acts, float* HN,
               float* rN, float* f, int32_t* argR, int32_t* argAq);

  Layers& L_;
  const Qwen2Config& c_;
  const Qwen2StepArgs& a_;
  const Qwen2Layout lay_;
  Qwen2Shape s_;
  const StepMode mode_;
  std::vector<float> cosHost_, sinHost_;
  Buffers x_{};
  std::vector<Qwen2LayerWeights> weights_;  // each layer's frozen weights (fp32 or bf16)
  const float* finalNorm_ = nullptr;
};

void Qwen2PolicyStep::plan(Workspace& w, Buffers& x) {
  const Qwen2Config& c = c_;
  const int64_t M = s_.M, D = c.D, MD = M * D, B = s_.B, BQ = B * c.Q, BF = B * c.F();
  const int64_t half = c.hd() / 2;
  x.cosT = stage(L_, w, cosHost_.data(), s_.T * half);
  x.sinT = stage(L_, w, sinHost_.data(), s_.T * half);
  x.prefix = stage(L_, w, a_.prefix, B * c.P * D);
  x.ids = stage(L_, w, a_.inputIds, B * c.S);
  x.actions = stage(L_, w, a_.actions, BQ * c.A);
  x.Hs = w.take<float>(mode_.gradients ? (c.L + 1) * MD : 2 * MD);
  x.HN = w.take<float>(MD);
  x.rN = w.take<float>(M);
  x.f = w.take<float>(BF);
  x.fA = w.take<float>(BF);
  x.argR = w.take<int32_t>(B * D);
  x.argAq = w.take<int32_t>(B * D);
  x.argR0 = w.take<int32_t>(B * D);
  x.argAq0 = w.take<int32_t>(B * D);
  x.Z0 = w.take<float>(BQ * D);
  x.head.Z1 = w.take<float>(BQ * c.Hh);
  x.head.G1 = w.take<float>(BQ * c.Hh);
  x.head.O = w.take<float>(BQ * c.A);
  x.head.dO = w.take<float>(BQ * c.A);
  x.acts.assign(mode_.gradients ? c.L : 1, Qwen2LayerActs{});
  for (Qwen2LayerActs& l : x.acts) planLayerActs(s_, w, l);
  x.Hping = x.HN0 = x.rN0 = nullptr;
  if (mode_.retention) {
    x.Hping = w.take<float>(2 * MD);
    x.HN0 = w.take<float>(MD);
    x.rN0 = w.take<float>(M);
    if (mode_.gradients) planLayerActs(s_, w, x.anchorActs);
    else x.anchorActs = x.acts[0];
  }
  planLayerScratch(s_, L_, mode_.streams, mode_.gradients, w, x.scratch);
  x.terms = w.take<double>(std::max(BQ * c.A, BF));
  x.losses = w.take<double>(2);
  x.frozenVec = x.finalNorm = nullptr;
  if (a_.frozenBf16) {
    x.frozenVec = w.take<float>(c.L * qwen2LayerVectorFloats(c));
    x.finalNorm = w.take<float>(D);
  }
  if (mode_.gradients) {
    x.dZ1 = w.take<float>(BQ * c.Hh);
    x.dZ0 = w.take<float>(BQ * D);
    x.dHN = w.take<float>(mode_.streams * MD);
    x.G = w.take<float>(mode_.streams * MD);
    x.dF = w.take<float>(BF);
  }
}

Qwen2Lora Qwen2PolicyStep::loraOf(const float* base, int64_t l) const {
  Qwen2Lora x{};
  for (int i = 0; i < kQwen2Linears; ++i)
    if (c_.targeted(i)) x.f[i] = {base + lay_.loraA[l][i], base + lay_.loraB[l][i]};
  return x;
}

// The forward of `layers` layers with the LoRA factors and queries at `w` (params or
// anchor, same offsets). Keeps every layer's input in Hs when `keep`, else ping-pongs.
// Pools C_R (when it is within reach) and, after all L layers, the final norm and C_AQ.
void Qwen2PolicyStep::forward(const float* w, int64_t layers, bool keep, float* Hs, std::vector<Qwen2LayerActs>& acts,
                              float* HN, float* rN, float* f, int32_t* argR, int32_t* argAq) {
  const Qwen2Config& c = c_;
  const int64_t T = s_.T, MD = s_.M * c.D;
  if (a_.frozenBf16) {
    // embedSequence's rows, the embedding table read in place in bf16 (widened exactly).
    if (c.P > 0) L_.gatherRows(Hs, x_.prefix, s_.B, T, c.D, 0, c.P, false);
    if (c.S > 0) L_.embedRowsBf16(Hs, x_.ids, c.S, 0, a_.embed16, s_.B, T, c.D, c.P, c.S);
    L_.broadcastRows(Hs, w + lay_.queries, s_.B, T, c.D, c.P + c.S, c.Q);
  } else {
    L_.embedSequence(Hs, x_.prefix, x_.ids, a_.embed, w + lay_.queries, s_.B, T, c.P, c.S, c.D);
  }
  const bool raw = c.usesRaw();
  const PoolShape span = poolAt(0, c.spanTokens(), c.rawOffset());
  if (raw && c.m == 0) L_.pool(span, Hs, f, argR);
  const float* last = Hs;
  for (int64_t l = 0; l < layers; ++l) {
    const float* Xin = keep ? Hs + l * MD : Hs + (l % 2) * MD;
    float* Xout = keep ? Hs + (l + 1) * MD : Hs + ((l + 1) % 2) * MD;
    qwen2LayerForward(L_, s_, weights_[static_cast<size_t>(l)], loraOf(w, l), Xin, acts[keep ? l : 0], Xout, x_.scratch);
    if (raw && l + 1 == c.m && c.m < c.L) L_.pool(span, Xout, f, argR);
    last = Xout;
  }
  if (layers < c.L) return;
  L_.rmsNorm(s_.M, c.D, static_cast<float>(c.eps), last, finalNorm_, HN, rN);
  if (raw && c.m == c.L) L_.pool(span, HN, f, argR);
  if (c.usesAq()) L_.pool(poolAt(T - c.Q, c.Q, c.aqOffset()), HN, f, argAq);
}

ModelStepResult Qwen2PolicyStep::run() {
  const Qwen2Config& c = c_;
  const int64_t B = s_.B, T = s_.T, M = s_.M, D = c.D, MD = M * D, Q = c.Q, F = c.F();
  const int64_t BQ = B * Q, qTok = T - Q;
  const float* P = a_.params;
  // The binding refuses host arrays for a device step before any call; reaching this is a bug.
  if (a_.frozenBf16 && (L_.hostMemory() || a_.precision != GemmPrecision::Bf16))
    throw std::logic_error("craftgrad: bf16 frozen weights need a device and precision bf16");
  if (!L_.hostMemory() && !a_.frozenInBackend)
    throw std::logic_error(std::string("craftgrad: the Qwen2 step on ") + L_.deviceName() +
                           " needs its frozen weights in the device's memory");
  L_.checkExtent(mode_.streams * MD, "the Qwen2 step");
  L_.checkExtent(mode_.streams * M * std::max(c.I, c.qDim()), "the Qwen2 step");
  L_.checkExtent(mode_.streams * s_.attention.rows() * T, "the Qwen2 step");

  qwen2RopeTables(c, cosHost_, sinHost_);
  Workspace sizing;
  {
    Buffers tmp{};
    plan(sizing, tmp);
  }
  const auto lease = L_.lease(sizing.used, a_.precision);
  Workspace w{lease->data()};
  plan(w, x_);
  s_.cosT = x_.cosT;
  s_.sinT = x_.sinT;
  // The frozen weights: the set's own fp32, or bf16 (matrices read in place, vectors widened).
  weights_.clear();
  for (int64_t l = 0; l < c.L; ++l) {
    if (a_.frozenBf16) {
      float* vec = x_.frozenVec + l * qwen2LayerVectorFloats(c);
      widenQwen2LayerVectors(L_, a_.layers16[static_cast<size_t>(l)], c, s_.off, vec);
      weights_.push_back(qwen2LayerWeightsBf16(a_.layers16[static_cast<size_t>(l)], c, s_.off, vec));
    } else {
      weights_.push_back(qwen2LayerWeights(a_.layers[static_cast<size_t>(l)], s_.off));
    }
  }
  if (a_.frozenBf16) L_.widenBf16(x_.finalNorm, a_.finalNorm16, D);
  finalNorm_ = a_.frozenBf16 ? x_.finalNorm : a_.finalNorm;

  // ---- forward (current weights), the action head and its loss ----
  forward(P, c.L, mode_.gradients, x_.Hs, x_.acts, x_.HN, x_.rN, x_.f, x_.argR, x_.argAq);
  L_.gatherRows(x_.Z0, x_.HN, B, T, D, qTok, Q, true);
  const ActionHead head{P + lay_.fc1w, P + lay_.fc1b, P + lay_.fc2w, P + lay_.fc2b, D, c.Hh, c.A};
  actionHeadForward(L_, head, BQ, x_.Z0, x_.actions, x_.head, x_.terms, x_.losses);

  // ---- anchor forward: no gradient, the anchor's LoRA factors and queries in place ----
  if (mode_.retention) {
    const int64_t layers = c.usesAq() ? c.L : c.m;
    std::vector<Qwen2LayerActs> one{x_.anchorActs};
    forward(a_.anchor, layers, false, x_.Hping, one, x_.HN0, x_.rN0, x_.fA, x_.argR0, x_.argAq0);
    L_.mseLoss(x_.f, x_.fA, mode_.streams == 2 ? x_.dF : nullptr, B * F, x_.terms, x_.losses + 1);
  }

  if (mode_.gradients) {
    // ---- head backward (the action stream only: the retention loss never sees the head) ----
    const float sc = a_.scale, beta = a_.accumulate ? 1.0f : 0.0f;
    actionHeadStepBackward(L_, head, BQ, x_.Z0, x_.head, {lay_.fc1w, lay_.fc1b, lay_.fc2w, lay_.fc2b, lay_.paramCount},
                           a_.gAct, mode_.streams == 2 ? a_.gRet : nullptr, sc, a_.accumulate, x_.dZ1, x_.dZ0);

    // ---- d(final hidden states): the head's at the queries; the retention features' ----
    L_.zero(x_.dHN, mode_.streams * MD);
    L_.gatherRows(x_.dHN, x_.dZ0, B, T, D, qTok, Q, false);
    if (mode_.streams == 2) {
      float* dRet = x_.dHN + MD;
      if (c.usesAq()) L_.poolBackward(poolAt(qTok, Q, c.aqOffset()), x_.dF, x_.argAq, dRet);
      if (c.usesRaw() && c.m == c.L) L_.poolBackward(poolAt(0, c.spanTokens(), c.rawOffset()), x_.dF, x_.argR, dRet);
    }
    L_.zero(x_.G, mode_.streams * MD);
    L_.rmsNormBackward(mode_.streams * M, M, D, x_.dHN, x_.Hs + c.L * MD, x_.rN, finalNorm_, x_.G);

    // ---- layers, last to first ----
    bool retLive = false;
    for (int64_t l = c.L - 1; l >= 0; --l) {
      if (mode_.streams == 2 && c.usesRaw() && l + 1 == c.m && c.m < c.L)
        L_.poolBackward(poolAt(0, c.spanTokens(), c.rawOffset()), x_.dF, x_.argR, x_.G + MD);
      retLive = mode_.streams == 2 && (c.usesAq() || l + 1 <= c.m);
      const LoraGradients out{{a_.gAct, retLive ? a_.gRet : nullptr}, 0, 0, sc, beta};  // offsets: per linear
      if (mode_.streams == 2 && !retLive && !a_.accumulate)
        for (int i = 0; i < kQwen2Linears; ++i)
          if (c.targeted(i)) {
            L_.zero(a_.gRet + lay_.loraA[l][i], c.r * c.linearIn(i));
            L_.zero(a_.gRet + lay_.loraB[l][i], c.linearOut(i) * c.r);
          }
      qwen2LayerBackward(L_, s_, lay_, l, retLive ? 2 : 1, weights_[static_cast<size_t>(l)], loraOf(P, l), x_.Hs + l * MD, x_.acts[l],
                         x_.G, out, x_.scratch);
    }

    // ---- action_queries: d(input sequence) at the query tokens, summed over the batch ----
    for (int st = 0; st < mode_.streams; ++st) {
      float* g = st == 0 ? a_.gAct : a_.gRet;
      const bool live = st == 0 || retLive;
      L_.columnSum(live ? x_.G + st * MD + qTok * D : nullptr, B, Q * D, T * D, sc, a_.accumulate, g + lay_.queries);
    }
  }
  return readLosses(L_, x_.losses, mode_.retention);
}

}  // namespace

ModelStepResult qwen2PolicyStep(Layers& layers, const Qwen2Config& c, const Qwen2StepArgs& a) {
  return Qwen2PolicyStep(layers, c, a).run();
}

}  // namespace craftgrad
