// The built-in AdapterPolicy (ARCHITECTURE.md §4a; layout in core/model_desc.h), one driver
// for every backend over core/layers.h.
//
// Forward per block: W_eff = W + s·B·A (merged LoRA, lora_linear.h), z = h·W_effᵀ + b,
// h ← h + gelu(z) (tanh form). Features f = pool(h after block m) | pool(h after block L);
// the action head (action_head.h) and the L1 loss; the anchor forward runs the same blocks
// with the anchor's LoRA factors read in place, keeping nothing. Backward: the action and
// retention gradients travel stacked as S row blocks (S·M rows), so gelu', the
// input-gradient product dZ·W_eff and dZ·B run once for both; the retention stream joins
// at the pooled features and never sees the head.
#include <algorithm>

#include "action_head.h"
#include "lora_linear.h"
#include "models.h"
#include "step.h"
#include "workspace.h"

namespace craftgrad {
namespace {

struct Buffers {
  const float *tokens, *actions;
  float *Weff, *WeffAnchor, *Hs, *Zs, *Hping, *Zping, *f, *fAnchor, *dF, *dY1, *G, *dZ, *u, *V;
  int32_t *argR, *argAq, *argR0, *argAq0;
  ActionHeadActs head;
  double *terms, *losses;
};

class AdapterPolicyStep {
 public:
  AdapterPolicyStep(Layers& L, const ModelConfig& c, const ModelStepArgs& a)
      : L_(L), c_(c), a_(a), lay_(modelLayout(c)), B_(a.batch), M_(a.batch * c.T), MD_(M_ * c.D),
        n_(c.activeBlocks()), mode_(stepMode(a.mode)), S_(mode_.streams) {}

  ModelStepResult run();

 private:
  void plan(Workspace& w, Buffers& b);
  LinearShape block() const { return {c_.D, c_.D, c_.r, c_.loraScale()}; }
  LoraFactors lora(const float* base, int64_t l) const { return {base + lay_.loraA[l], base + lay_.loraB[l]}; }
  PoolShape poolAt(int64_t off) const { return {B_, c_.T, c_.D, c_.F(), 0, c_.T, off, c_.pool}; }
  void features(const float* lora, float* Weff, float* H, float* Z, bool keep, float* f, int32_t* argR,
                int32_t* argAq);

  Layers& L_;
  const ModelConfig& c_;
  const ModelStepArgs& a_;
  const ModelLayout lay_;
  const int64_t B_, M_, MD_, n_;
  const StepMode mode_;
  const int64_t S_;
  Buffers b_{};
};

void AdapterPolicyStep::plan(Workspace& w, Buffers& b) {
  const int64_t D = c_.D, F = c_.F(), Hd = c_.H, KA = c_.actionDim(), r = c_.r, n = n_, S = S_, B = B_;
  b.tokens = stage(L_, w, a_.tokens, MD_);
  b.actions = stage(L_, w, a_.actions, B * KA);
  b.Weff = w.take<float>(n * D * D);
  b.WeffAnchor = w.take<float>(D * D);
  b.Hs = w.take<float>((n + 1) * MD_);
  b.Zs = w.take<float>(n * MD_);
  b.Hping = w.take<float>(2 * MD_);
  b.Zping = w.take<float>(MD_);
  b.f = w.take<float>(B * F);
  b.fAnchor = w.take<float>(B * F);
  b.head.Z1 = w.take<float>(B * Hd);
  b.head.G1 = w.take<float>(B * Hd);
  b.head.O = w.take<float>(B * KA);
  b.head.dO = w.take<float>(B * KA);
  b.argR = w.take<int32_t>(B * D);
  b.argAq = w.take<int32_t>(B * D);
  b.argR0 = w.take<int32_t>(B * D);
  b.argAq0 = w.take<int32_t>(B * D);
  b.dF = w.take<float>(S * B * F);
  b.dY1 = w.take<float>(B * Hd);
  b.G = w.take<float>(S * MD_);
  b.dZ = w.take<float>(S * MD_);
  b.u = w.take<float>(M_ * r);
  b.V = w.take<float>(S * M_ * r);
  b.terms = w.take<double>(std::max(B * KA, B * F));
  b.losses = w.take<double>(2);
}

// The features through the first activeBlocks() blocks with the LoRA factors at `lora`
// (params or anchor: same offsets). keep: every block's input and pre-activation kept in
// H and Z ((n+1) and n slices), else two slices ping-pong.
void AdapterPolicyStep::features(const float* lora, float* Weff, float* H, float* Z, bool keep, float* f,
                                 int32_t* argR, int32_t* argAq) {
  const int64_t D = c_.D, MD = MD_;
  L_.copy(H, b_.tokens, MD);
  for (int64_t l = 0; l < n_; ++l) {
    float* Wl = keep ? Weff + l * D * D : Weff;
    mergeLora(L_, block(), a_.frozen + lay_.baseW[l], this->lora(lora, l), Wl);
    const float* Hin = keep ? H + l * MD : H + (l % 2) * MD;
    float* Hout = keep ? H + (l + 1) * MD : H + ((l + 1) % 2) * MD;
    float* Zl = keep ? Z + l * MD : Z;
    L_.gemm({M_, D, D, 1.0f, {Hin, D, false}, {Wl, D, true}, 0.0f, Zl, D});
    L_.biasGelu(Zl, a_.frozen + lay_.baseB[l], Hin, Hout, M_, D);
    if (l + 1 == c_.m && c_.usesRaw()) L_.pool(poolAt(c_.rawOffset()), Hout, f, argR);
    if (l + 1 == c_.L && c_.usesAq()) L_.pool(poolAt(c_.aqOffset()), Hout, f, argAq);
  }
}

ModelStepResult AdapterPolicyStep::run() {
  const int64_t B = B_, D = c_.D, r = c_.r, F = c_.F(), KA = c_.actionDim(), MD = MD_, S = S_;
  const float* P = a_.params;
  L_.checkExtent(S * M_, "the built-in model");
  L_.checkExtent(MD, "the built-in model");
  L_.checkExtent(B * std::max(F, c_.H), "the built-in model");

  Workspace sizing;
  plan(sizing, b_);
  const auto lease = L_.lease(sizing.used, a_.precision);
  Workspace w{lease->data()};
  plan(w, b_);

  // ---- forward (current weights, activations kept), the head and the action loss ----
  features(P, b_.Weff, b_.Hs, b_.Zs, true, b_.f, b_.argR, b_.argAq);
  const ActionHead head{P + lay_.fc1w, P + lay_.fc1b, P + lay_.fc2w, P + lay_.fc2b, F, c_.H, KA};
  actionHeadForward(L_, head, B, b_.f, b_.actions, b_.head, b_.terms, b_.losses);

  // ---- anchor forward: no gradient, the anchor's LoRA factors read in place ----
  if (mode_.retention) {
    features(a_.anchor, b_.WeffAnchor, b_.Hping, b_.Zping, false, b_.fAnchor, b_.argR0, b_.argAq0);
    L_.mseLoss(b_.f, b_.fAnchor, S == 2 ? b_.dF + B * F : nullptr, B * F, b_.terms, b_.losses + 1);
  }

  if (mode_.gradients) {
    // ---- head backward (the action stream only: the retention loss never sees the head) ----
    const float sc = a_.scale, beta = a_.accumulate ? 1.0f : 0.0f;
    actionHeadStepBackward(L_, head, B, b_.f, b_.head, {lay_.fc1w, lay_.fc1b, lay_.fc2w, lay_.fc2b, lay_.paramCount},
                           a_.gAct, S == 2 ? a_.gRet : nullptr, sc, a_.accumulate, b_.dY1, b_.dF);

    // ---- blocks backward, both streams stacked as S row blocks of M rows ----
    L_.zero(b_.G, S * MD);
    for (int64_t l = n_ - 1; l >= 0; --l) {
      for (int64_t s = 0; s < S; ++s) {
        if (l + 1 == c_.L && c_.usesAq()) L_.poolBackward(poolAt(c_.aqOffset()), b_.dF + s * B * F, b_.argAq, b_.G + s * MD);
        if (l + 1 == c_.m && c_.usesRaw()) L_.poolBackward(poolAt(c_.rawOffset()), b_.dF + s * B * F, b_.argR, b_.G + s * MD);
      }
      const float* Hl = b_.Hs + l * MD;
      L_.geluBackward(b_.Zs + l * MD, b_.G, b_.dZ, MD, static_cast<int>(S));
      const LoraFactors f = lora(P, l);
      L_.gemm({M_, r, D, 1.0f, {Hl, D, false}, {f.A, D, true}, 0.0f, b_.u, r});          // u = H·Aᵀ
      L_.gemm({S * M_, r, D, 1.0f, {b_.dZ, D, false}, {f.B, r, false}, 0.0f, b_.V, r});   // V = dZ·B (stacked)
      const LoraGradients out{{a_.gAct, S == 2 ? a_.gRet : nullptr}, lay_.loraA[l], lay_.loraB[l], sc, beta};
      loraWeightGradients(L_, block(), M_, static_cast<int>(S), Hl, b_.u, b_.dZ, b_.V, out);
      if (l > 0) L_.gemm({S * M_, D, D, 1.0f, {b_.dZ, D, false}, {b_.Weff + l * D * D, D, false}, 1.0f, b_.G, D});
    }
    // Blocks the features never see (raw_only: after m) get zero gradients.
    if (!a_.accumulate)
      for (int64_t l = n_; l < c_.L; ++l)
        for (int64_t s = 0; s < S; ++s) {
          float* g = s == 0 ? a_.gAct : a_.gRet;
          L_.zero(g + lay_.loraA[l], r * D);
          L_.zero(g + lay_.loraB[l], D * r);
        }
  }
  return readLosses(L_, b_.losses, mode_.retention);
}

}  // namespace

ModelStepResult adapterPolicyStep(Layers& layers, const ModelConfig& c, const ModelStepArgs& a) {
  return AdapterPolicyStep(layers, c, a).run();
}

}  // namespace craftgrad
