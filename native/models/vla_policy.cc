// VLA-Adapter (docs/VLA-ADAPTER.md; layout in core/vla_desc.h), one driver for every backend
// over core/layers.h.
//
// Forward: the 6-channel images → patch matrix → the two towers (vit_tower.h) → the fused
// projector (LoRA linears, GELU erf) → the sequence [BOS; vision; prompt; action_queries] →
// the L decoder layers (qwen2_decoder.h; every hidden state kept: the head reads them) and
// the final norm → the Pro head (pro_head.h), fed per block with hidden_states[i+1]'s task
// and action rows and the proprio token (proprio projector: fc1, GELU erf, fc2) → the L1
// loss. The bridge features pool hidden_states[m] (C_R) and the final states at the queries
// (C_AQ). The anchor forward runs towers, projector and decoder with the anchor's LoRA
// factors and queries (the head never enters the retention loss).
// Backward: the head (action stream only) gives the gradients at the hidden states it read;
// the action and retention gradients then travel stacked (two row blocks) through the
// decoder, the projector and the towers.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "lora_linear.h"
#include "models.h"
#include "pro_head.h"
#include "qwen2_decoder.h"
#include "step.h"
#include "vit_tower.h"
#include "workspace.h"

namespace craftgrad {
namespace {

// The fused projector's activations (fc1 → GELU → fc2 → GELU → fc3) for one forward.
struct ProjectorActs {
  float *Z1, *H1, *Z2, *H2, *Out;
  float* U[3];
};

struct Buffers {
  const float *pixels, *actions, *proprio, *noise, *cosT, *sinT;
  const int32_t* ids;
  float *P6, *Feat, *FeatA;
  VitBuffers tower[2], anchorTower[2];
  ProjectorActs proj, anchorProj;
  float *Hs, *HN, *rN, *Hping, *HN0, *rN0, *f, *fA, *dF;
  int32_t *argR, *argAq, *argR0, *argAq0;
  std::vector<Qwen2LayerActs> acts;
  Qwen2LayerActs anchorActs;
  Qwen2LayerScratch scratch;
  float *Zp, *Gp, *Pt;  // proprio projector: fc1 (+bias), GELU, the token p (B × D)
  float* tmpQ;          // B·Q × D
  std::vector<float*> Had, Ht, dHad, dHt;
  ProHeadBuffers head;
  float *dHN, *G, *dP, *dGp, *dVt, *dH, *dFeat, *Vp;
  double *terms, *losses;
  // bf16 frozen weights: the stems, the projector, the decoder's vectors and final norm widened
  // once per call, and one tower block at a time (else null).
  float *stem[2], *projector, *llmVec, *finalNorm, *block;
};

class VlaPolicyStep {
 public:
  VlaPolicyStep(Layers& L, const VlaConfig& c, const VlaStepArgs& a)
      : L_(L), c_(c), a_(a), lay_(vlaLayout(c)), q_(c.decoder()), s_(q_, a.batch), mode_(stepMode(a.mode)),
        towerShape_{VitShape(c.tower[0], a.batch * c.views, c.r, c.loraScale()),
                    VitShape(c.tower[1], a.batch * c.views, c.r, c.loraScale())},
        head_(c, lay_, a.batch) {
    for (AttentionShape* at : {&s_.attention, &towerShape_[0].attention, &towerShape_[1].attention, &head_.attention})
      at->precision = a.precision;
  }

  ModelStepResult run();

 private:
  void plan(Workspace& w, Buffers& x);
  void planProjector(Workspace& w, ProjectorActs& p) const;
  LinearShape projLinear(int i) const;
  const float* frozenGroup(int64_t i) const { return fz_[static_cast<size_t>(i)]; }
  // The frozen groups as fp32 pointers (a_.frozen, or with bf16 frozen weights the widened
  // stems, projector and final norm; null for what is read as bf16), and each decoder layer.
  void frozenWeights();
  VitBf16Blocks towerBf16(int k) const;
  std::vector<const float*> towerBlocks(int k) const;
  const float* towerStem(int k) const;
  Qwen2Lora llmLora(const float* base, int64_t l) const;
  PoolShape poolAt(int64_t t0, int64_t n, int64_t off) const { return {s_.B, s_.T, c_.D, c_.F(), t0, n, off, c_.pool}; }
  // The vision tokens (B·P × D) of the weights at w into `out` (towers, projector).
  void visionForward(const float* w, bool keep, VitBuffers* towers, ProjectorActs& proj, float* feat);
  // The decoder over the sequence; keeps hidden states in Hs when keep; pools the features.
  void decoderForward(const float* w, const float* vision, int64_t layers, bool keep, float* Hs,
                      std::vector<Qwen2LayerActs>& acts, float* HN, float* rN, float* f, int32_t* argR, int32_t* argAq);
  const float* hidden(int64_t j) const { return j < c_.L ? x_.Hs + j * s_.M * c_.D : x_.HN; }
  LoraGradients gradsOut() const {
    return {{a_.gAct, mode_.streams == 2 ? a_.gRet : nullptr}, 0, 0, a_.scale, a_.accumulate ? 1.0f : 0.0f};
  }
  // G rows [t0, t0 + n) of each sample (T rows) += src (B·n × D): one strided block add.
  void addRows(float* G, const float* src, int64_t t0, int64_t n) {
    L_.copyColumns(G + t0 * c_.D, s_.T * c_.D, src, n * c_.D, s_.B, n * c_.D, true);
  }
  void addHeadGradients(float* G, int64_t j);

  Layers& L_;
  const VlaConfig& c_;
  const VlaStepArgs& a_;
  const VlaLayout lay_;
  const Qwen2Config q_;
  Qwen2Shape s_;
  const StepMode mode_;
  VitShape towerShape_[2];
  ProHeadShape head_;
  std::vector<float> cosHost_, sinHost_, headCos_, headSin_;
  Buffers x_{};
  std::vector<const float*> fz_;
  std::vector<Qwen2LayerWeights> llm_;
  std::vector<const uint16_t*> blocks16_[2];
};

LinearShape VlaPolicyStep::projLinear(int i) const {
  const float sc = c_.loraScale();
  if (i == 0) return {c_.visionDim(), c_.projHidden, c_.r, sc};
  if (i == 1) return {c_.projHidden, c_.D, c_.r, sc};
  return {c_.D, c_.D, c_.r, sc};
}

std::vector<const float*> VlaPolicyStep::towerBlocks(int k) const {
  const int64_t first = k == 0 ? 1 : 2 + c_.tower[0].run();
  return std::vector<const float*>(fz_.begin() + first, fz_.begin() + first + c_.tower[k].run());
}

const float* VlaPolicyStep::towerStem(int k) const { return fz_[k == 0 ? 0 : 1 + c_.tower[0].run()]; }

VitBf16Blocks VlaPolicyStep::towerBf16(int k) const {
  return a_.frozenBf16 ? VitBf16Blocks{&blocks16_[k], x_.block} : VitBf16Blocks{};
}

void VlaPolicyStep::frozenWeights() {
  const VlaConfig& c = c_;
  const int64_t run0 = c.tower[0].run(), run1 = c.tower[1].run(), layer0 = 4 + run0 + run1;
  llm_.clear();
  if (!a_.frozenBf16) {
    fz_ = a_.frozen;
    for (int64_t l = 0; l < c.L; ++l) llm_.push_back(qwen2LayerWeights(fz_[layer0 + l], s_.off));
    return;
  }
  const std::vector<const uint16_t*>& g = a_.frozen16;
  fz_.assign(g.size(), nullptr);
  for (int k = 0; k < 2; ++k) {
    const int64_t stem = k == 0 ? 0 : 1 + run0;
    L_.widenBf16(x_.stem[k], g[stem], vitStemOffsets(c.tower[k]).floats);
    fz_[stem] = x_.stem[k];
    blocks16_[k].assign(g.begin() + stem + 1, g.begin() + stem + 1 + c.tower[k].run());
  }
  L_.widenBf16(x_.projector, g[2 + run0 + run1], projectorOffsets(c).floats);
  fz_[2 + run0 + run1] = x_.projector;
  for (int64_t l = 0; l < c.L; ++l) {
    float* vec = x_.llmVec + l * qwen2LayerVectorFloats(q_);
    widenQwen2LayerVectors(L_, g[layer0 + l], q_, s_.off, vec);
    llm_.push_back(qwen2LayerWeightsBf16(g[layer0 + l], q_, s_.off, vec));
  }
  L_.widenBf16(x_.finalNorm, g[layer0 + c.L], c.D);
  fz_[layer0 + c.L] = x_.finalNorm;
}

Qwen2Lora VlaPolicyStep::llmLora(const float* base, int64_t l) const {
  Qwen2Lora x{};
  for (int i = 0; i < kQwen2Linears; ++i) x.f[i] = {base + lay_.llm.loraA[l][i], base + lay_.llm.loraB[l][i]};
  return x;
}

void VlaPolicyStep::planProjector(Workspace& w, ProjectorActs& p) const {
  const int64_t R = s_.B * c_.patches();
  p.Z1 = w.take<float>(R * c_.projHidden);
  p.H1 = w.take<float>(R * c_.projHidden);
  p.Z2 = w.take<float>(R * c_.D);
  p.H2 = w.take<float>(R * c_.D);
  p.Out = w.take<float>(R * c_.D);
  for (float*& u : p.U) u = w.take<float>(R * c_.r);
}

void VlaPolicyStep::plan(Workspace& w, Buffers& x) {
  const VlaConfig& c = c_;
  const int64_t B = s_.B, M = s_.M, D = c.D, MD = M * D, BP = B * c.patches(), BF = B * c.F();
  const int64_t images = B * c.views, H = c.tower[0].image, nTok = images * c.tower[0].N();
  const int64_t half = q_.hd() / 2;
  const bool back = mode_.gradients;
  const int st = mode_.streams;
  x.pixels = stage(L_, w, a_.pixels, images * 6 * H * H);
  x.ids = stage(L_, w, a_.inputIds, B * c.S);
  x.actions = stage(L_, w, a_.actions, B * c.chunk * c.A);
  x.proprio = c.proprio ? stage(L_, w, a_.proprio, B * c.proprioDim) : nullptr;
  x.noise = a_.noise ? stage(L_, w, a_.noise, c.chunk * c.headIn()) : nullptr;
  x.cosT = stage(L_, w, cosHost_.data(), s_.T * half);
  x.sinT = stage(L_, w, sinHost_.data(), s_.T * half);
  x.P6 = w.take<float>(nTok * 2 * c.tower[0].pixels());
  x.Feat = w.take<float>(BP * c.visionDim());
  for (int k = 0; k < 2; ++k) planVit(towerShape_[k], L_, back, st, w, x.tower[k]);
  planProjector(w, x.proj);
  x.Hs = w.take<float>((c.L + 1) * MD);
  x.HN = w.take<float>(MD);
  x.rN = w.take<float>(M);
  x.f = w.take<float>(BF);
  x.fA = w.take<float>(BF);
  x.argR = w.take<int32_t>(B * D);
  x.argAq = w.take<int32_t>(B * D);
  x.argR0 = w.take<int32_t>(B * D);
  x.argAq0 = w.take<int32_t>(B * D);
  x.acts.assign(back ? c.L : 1, Qwen2LayerActs{});
  for (Qwen2LayerActs& l : x.acts) planLayerActs(s_, w, l);
  x.FeatA = x.Hping = x.HN0 = x.rN0 = nullptr;
  if (mode_.retention) {
    x.FeatA = w.take<float>(BP * c.visionDim());
    for (int k = 0; k < 2; ++k) planVit(towerShape_[k], L_, false, 1, w, x.anchorTower[k]);
    planProjector(w, x.anchorProj);
    x.Hping = w.take<float>(2 * MD);
    x.HN0 = w.take<float>(MD);
    x.rN0 = w.take<float>(M);
    if (back) planLayerActs(s_, w, x.anchorActs);
    else x.anchorActs = x.acts[0];
  }
  planLayerScratch(s_, L_, st, back, w, x.scratch);
  x.Zp = w.take<float>(B * D);
  x.Gp = w.take<float>(B * D);
  x.Pt = w.take<float>(B * D);
  x.tmpQ = w.take<float>(B * c.Q * D);
  x.Had.assign(c.NB, nullptr);
  x.Ht.assign(c.NB, nullptr);
  for (int64_t i = 0; i < c.NB; ++i) {
    x.Had[i] = w.take<float>(B * c.Ka() * D);
    x.Ht[i] = w.take<float>(BP * D);
  }
  planProHead(head_, L_, back, w, x.head);
  x.terms = w.take<double>(BF);
  x.losses = w.take<double>(2);
  x.stem[0] = x.stem[1] = x.projector = x.llmVec = x.finalNorm = x.block = nullptr;
  if (a_.frozenBf16) {
    for (int k = 0; k < 2; ++k) x.stem[k] = w.take<float>(vitStemOffsets(c.tower[k]).floats);
    x.projector = w.take<float>(projectorOffsets(c).floats);
    x.llmVec = w.take<float>(c.L * qwen2LayerVectorFloats(q_));
    x.finalNorm = w.take<float>(D);
    x.block = w.take<float>(std::max(vitBlockOffsets(c.tower[0]).floats, vitBlockOffsets(c.tower[1]).floats));
  }
  x.dHad.assign(c.NB, nullptr);
  x.dHt.assign(c.NB, nullptr);
  x.dF = x.dHN = x.G = x.dP = x.dGp = x.dVt = x.dH = x.dFeat = x.Vp = nullptr;
  if (!back) return;
  for (int64_t i = 0; i < c.NB; ++i) {
    x.dHad[i] = w.take<float>(B * c.Ka() * D);
    x.dHt[i] = w.take<float>(BP * D);
  }
  x.dF = w.take<float>(BF);
  x.dHN = w.take<float>(st * MD);
  x.G = w.take<float>(st * MD);
  x.dP = w.take<float>(B * D);
  x.dGp = w.take<float>(B * D);
  x.dVt = w.take<float>(st * BP * D);
  x.dH = w.take<float>(st * BP * std::max({c.projHidden, D, c.visionDim()}));
  x.dFeat = w.take<float>(st * BP * c.projHidden);
  x.Vp = w.take<float>(st * BP * c.r);
}

void VlaPolicyStep::visionForward(const float* w, bool keep, VitBuffers* towers, ProjectorActs& p, float* feat) {
  const VlaConfig& c = c_;
  const int64_t R = s_.B * c.patches(), vd = c.visionDim();
  const float* proj = fz_[2 + c.tower[0].run() + c.tower[1].run()];
  const ProjectorOffsets po = projectorOffsets(c);
  for (int k = 0; k < 2; ++k)
    vitForward(L_, towerShape_[k], towerStem(k), towerBlocks(k), vitLoraOf(lay_.tower[k], w, c.tower[k].run()), x_.P6,
               k, keep, towers[k], feat, vd, k == 0 ? 0 : c.tower[0].D, towerBf16(k));
  // PrismaticProjector, fused (modeling_prismatic.py:248-275).
  loraLinearForward(L_, projLinear(0), R, feat, proj + po.fc1W, nullptr, {w + lay_.projA[0], w + lay_.projB[0]}, p.U[0], p.Z1);
  L_.biasGeluErf(p.Z1, proj + po.fc1B, nullptr, p.H1, R, c.projHidden);
  loraLinearForward(L_, projLinear(1), R, p.H1, proj + po.fc2W, nullptr, {w + lay_.projA[1], w + lay_.projB[1]}, p.U[1], p.Z2);
  L_.biasGeluErf(p.Z2, proj + po.fc2B, nullptr, p.H2, R, c.D);
  loraLinearForward(L_, projLinear(2), R, p.H2, proj + po.fc3W, proj + po.fc3B, {w + lay_.projA[2], w + lay_.projB[2]},
                    p.U[2], p.Out);
}

void VlaPolicyStep::decoderForward(const float* w, const float* vision, int64_t layers, bool keep, float* Hs,
                                   std::vector<Qwen2LayerActs>& acts, float* HN, float* rN, float* f, int32_t* argR,
                                   int32_t* argAq) {
  const VlaConfig& c = c_;
  const int64_t T = s_.T, B = s_.B, D = c.D, MD = s_.M * D, Pv = c.patches();
  const int64_t embedGroup = 3 + c.tower[0].run() + c.tower[1].run();
  // [embed(BOS); vision; embed(ids[1 .. S−Q)); action_queries] (modeling_prismatic.py:486-510, 615-633).
  // With bf16 frozen weights the rows are gathered from the bf16 table in place.
  auto embedRows = [&](int64_t idOffset, int64_t t0, int64_t n) {
    if (a_.frozenBf16) L_.embedRowsBf16(Hs, x_.ids, c.S, idOffset, a_.frozen16[embedGroup], B, T, D, t0, n);
    else L_.embedRows(Hs, x_.ids, c.S, idOffset, fz_[embedGroup], B, T, D, t0, n);
  };
  embedRows(0, 0, 1);
  L_.gatherRows(Hs, vision, B, T, D, 1, Pv, false);
  if (c.promptTokens() > 0) embedRows(1, 1 + Pv, c.promptTokens());
  L_.broadcastRows(Hs, w + lay_.queries, B, T, D, T - c.Q, c.Q);
  const bool raw = mode_.retention && c.usesRaw();
  const PoolShape span = poolAt(c.spanBegin(), c.spanTokens(), 0);
  if (raw && c.m == 0) L_.pool(span, Hs, f, argR);
  const float* last = Hs;
  const int64_t layer0 = 4 + c.tower[0].run() + c.tower[1].run();
  for (int64_t l = 0; l < layers; ++l) {
    const float* Xin = keep ? Hs + l * MD : Hs + (l % 2) * MD;
    float* Xout = keep ? Hs + (l + 1) * MD : Hs + ((l + 1) % 2) * MD;
    qwen2LayerForward(L_, s_, llm_[static_cast<size_t>(l)], llmLora(w, l), Xin, acts[keep && mode_.gradients ? l : 0], Xout,
                      x_.scratch);
    if (raw && l + 1 == c.m && c.m < c.L) L_.pool(span, Xout, f, argR);
    last = Xout;
  }
  if (layers < c.L) return;
  L_.rmsNorm(s_.M, D, static_cast<float>(c.eps), last, fz_[layer0 + c.L], HN, rN);
  if (raw && c.m == c.L) L_.pool(span, HN, f, argR);
  if (mode_.retention && c.usesAq()) L_.pool(poolAt(T - c.Q, c.Q, c.aqOffset()), HN, f, argAq);
}

// Stream 0 of G (d hidden_states[j]) += the head's gradients at the rows block j−1 read.
void VlaPolicyStep::addHeadGradients(float* G, int64_t j) {
  const int64_t i = j - 1, T = s_.T, D = c_.D, B = s_.B;
  if (i < 0 || i >= c_.NB) return;
  addRows(G, x_.dHt[i], 0, c_.patches());
  L_.gatherRows(x_.tmpQ, x_.dHad[i], B, c_.Ka(), D, 0, c_.Q, true);
  addRows(G, x_.tmpQ, T - c_.Q - 1, c_.Q);
  (void)T;
}

ModelStepResult VlaPolicyStep::run() {
  const VlaConfig& c = c_;
  const int64_t B = s_.B, T = s_.T, M = s_.M, D = c.D, MD = M * D, Q = c.Q, Pv = c.patches(), BP = B * Pv;
  const int64_t images = B * c.views, H = c.tower[0].image;
  const float* P = a_.params;
  if (a_.frozenBf16 && (L_.hostMemory() || a_.precision != GemmPrecision::Bf16))
    throw std::logic_error("craftgrad: bf16 frozen weights need a device and precision bf16");
  if (!L_.hostMemory() && !a_.frozenInBackend)
    throw std::logic_error(std::string("craftgrad: the VLA step on ") + L_.deviceName() +
                           " needs its frozen weights in the device's memory");
  for (int k = 0; k < 2; ++k) {
    L_.checkExtent(mode_.streams * towerShape_[k].M * std::max(3 * c.tower[k].D, c.tower[k].mlp), "the VLA step");
    L_.checkExtent(mode_.streams * towerShape_[k].attention.rows() * c.tower[k].T(), "the VLA step");
  }
  L_.checkExtent(mode_.streams * M * std::max(c.I, q_.qDim()), "the VLA step");
  L_.checkExtent(mode_.streams * s_.attention.rows() * T, "the VLA step");
  L_.checkExtent(mode_.streams * BP * std::max(c.projHidden, c.visionDim()), "the VLA step");

  qwen2RopeTables(q_, cosHost_, sinHost_);
  proHeadRopeTables(c.headHd(), proHeadRopePositions(head_), headCos_, headSin_);
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
  frozenWeights();
  L_.upload(x_.head.cosT, headCos_.data(), sizeof(float) * headCos_.size());
  L_.upload(x_.head.sinT, headSin_.data(), sizeof(float) * headSin_.size());

  // ---- forward (current weights) ----
  L_.patchify(x_.pixels, x_.P6, images, 6, H, H, c.tower[0].patch);
  visionForward(P, mode_.gradients, x_.tower, x_.proj, x_.Feat);
  decoderForward(P, x_.proj.Out, c.L, true, x_.Hs, x_.acts, x_.HN, x_.rN, x_.f, x_.argR, x_.argAq);
  // The proprio token (ProprioProjector, projectors.py:6-24).
  if (c.proprio) {
    L_.gemm({B, D, c.proprioDim, 1.0f, {x_.proprio, c.proprioDim, false}, {P + lay_.pFc1W, c.proprioDim, true}, 0.0f,
             x_.Zp, D});
    L_.biasGeluErf(x_.Zp, P + lay_.pFc1B, nullptr, x_.Gp, B, D);
    L_.gemm({B, D, D, 1.0f, {x_.Gp, D, false}, {P + lay_.pFc2W, D, true}, 0.0f, x_.Pt, D});
    L_.addBias(x_.Pt, P + lay_.pFc2B, B, D);
  }
  // The head's inputs: block i reads hidden_states[i+1] at the task rows 0..P−1 and the
  // action rows T−Q−1..T−2 (finetune.py:396-409), then the proprio token.
  std::vector<const float*> had(c.NB), ht(c.NB);
  for (int64_t i = 0; i < c.NB; ++i) {
    const float* hs = hidden(i + 1);
    L_.gatherRows(x_.Ht[i], hs, B, T, D, 0, Pv, true);
    L_.gatherRows(x_.tmpQ, hs, B, T, D, T - Q - 1, Q, true);
    L_.gatherRows(x_.Had[i], x_.tmpQ, B, c.Ka(), D, 0, Q, false);
    if (c.proprio) L_.gatherRows(x_.Had[i], x_.Pt, B, c.Ka(), D, Q, 1, false);
    had[i] = x_.Had[i];
    ht[i] = x_.Ht[i];
  }
  proHeadForward(L_, head_, P, x_.noise, had, ht, x_.actions, x_.head, x_.losses);

  // ---- anchor forward: towers, projector and decoder with the anchor's LoRA and queries ----
  if (mode_.retention) {
    const int64_t layers = c.usesAq() ? c.L : c.m;
    visionForward(a_.anchor, false, x_.anchorTower, x_.anchorProj, x_.FeatA);
    std::vector<Qwen2LayerActs> one{x_.anchorActs};
    decoderForward(a_.anchor, x_.anchorProj.Out, layers, false, x_.Hping, one, x_.HN0, x_.rN0, x_.fA, x_.argR0,
                   x_.argAq0);
    L_.mseLoss(x_.f, x_.fA, mode_.streams == 2 ? x_.dF : nullptr, B * c.F(), x_.terms, x_.losses + 1);
  }
  if (!mode_.gradients) return readLosses(L_, x_.losses, mode_.retention);

  // ---- backward ----
  const float sc = a_.scale;
  const bool acc = a_.accumulate;
  const int st = mode_.streams;
  proHeadBackward(L_, head_, P, had, ht, x_.head, a_.gAct, sc, acc, x_.dHad, x_.dHt);
  if (st == 2 && !acc) L_.zero(a_.gRet + lay_.headBegin, lay_.paramCount - lay_.headBegin);
  if (c.proprio) {
    // d p = Σ over blocks of the adapter keys' row Q.
    L_.zero(x_.dP, B * D);
    for (int64_t i = 0; i < c.NB; ++i) {
      L_.gatherRows(x_.tmpQ, x_.dHad[i], B, c.Ka(), D, Q, 1, true);
      L_.add(x_.dP, x_.tmpQ, B * D);
    }
    L_.gemm({D, D, B, sc, {x_.dP, D, true}, {x_.Gp, D, false}, acc ? 1.0f : 0.0f, a_.gAct + lay_.pFc2W, D});
    L_.columnSum(x_.dP, B, D, D, sc, acc, a_.gAct + lay_.pFc2B);
    L_.gemm({B, D, D, 1.0f, {x_.dP, D, false}, {P + lay_.pFc2W, D, false}, 0.0f, x_.dGp, D});
    L_.geluErfBackward(x_.Zp, x_.dGp, x_.dGp, B * D, 1);
    L_.gemm({D, c.proprioDim, B, sc, {x_.dGp, D, true}, {x_.proprio, c.proprioDim, false}, acc ? 1.0f : 0.0f,
             a_.gAct + lay_.pFc1W, c.proprioDim});
    L_.columnSum(x_.dGp, B, D, D, sc, acc, a_.gAct + lay_.pFc1B);
  }

  // d(final hidden states): the head's (when its last block reads them) and the retention features'.
  L_.zero(x_.dHN, st * MD);
  addHeadGradients(x_.dHN, c.L);
  if (st == 2) {
    float* dRet = x_.dHN + MD;
    if (c.usesAq()) L_.poolBackward(poolAt(T - Q, Q, c.aqOffset()), x_.dF, x_.argAq, dRet);
    if (c.usesRaw() && c.m == c.L) L_.poolBackward(poolAt(c.spanBegin(), c.spanTokens(), 0), x_.dF, x_.argR, dRet);
  }
  const int64_t layer0 = 4 + c.tower[0].run() + c.tower[1].run();
  L_.zero(x_.G, st * MD);
  L_.rmsNormBackward(st * M, M, D, x_.dHN, x_.Hs + c.L * MD, x_.rN, fz_[layer0 + c.L], x_.G);
  for (int64_t l = c.L - 1; l >= 0; --l) {
    if (l + 1 < c.L) addHeadGradients(x_.G, l + 1);
    if (st == 2 && c.usesRaw() && l + 1 == c.m && c.m < c.L)
      L_.poolBackward(poolAt(c.spanBegin(), c.spanTokens(), 0), x_.dF, x_.argR, x_.G + MD);
    qwen2LayerBackward(L_, s_, lay_.llm, l, st, llm_[static_cast<size_t>(l)], llmLora(P, l), x_.Hs + l * MD, x_.acts[l], x_.G,
                       gradsOut(), x_.scratch);
  }
  if (st == 2 && c.usesRaw() && c.m == 0)
    L_.poolBackward(poolAt(c.spanBegin(), c.spanTokens(), 0), x_.dF, x_.argR, x_.G + MD);
  // action_queries: the input sequence's gradient at the query rows, summed over the batch.
  for (int k = 0; k < st; ++k)
    L_.columnSum(x_.G + k * MD + (T - Q) * D, B, Q * D, T * D, sc, acc, (k == 0 ? a_.gAct : a_.gRet) + lay_.queries);

  // The projector (fc3, GELU, fc2, GELU, fc1) from the vision rows' gradient.
  L_.gatherRows(x_.dVt, x_.G, st * B, T, D, 1, Pv, true);
  const float* proj = fz_[2 + c.tower[0].run() + c.tower[1].run()];
  const ProjectorOffsets po = projectorOffsets(c);
  const ProjectorActs& p = x_.proj;
  LoraGradients out = gradsOut();
  auto projBack = [&](int i, const float* X, const float* W, const float* dY, float* dX) {
    out.offA = lay_.projA[i];
    out.offB = lay_.projB[i];
    loraLinearBackward(L_, projLinear(i), BP, st, X, W, {P + lay_.projA[i], P + lay_.projB[i]}, p.U[i], dY, dX, 0.0f,
                       x_.Vp, out);
  };
  projBack(2, p.H2, proj + po.fc3W, x_.dVt, x_.dH);
  L_.geluErfBackward(p.Z2, x_.dH, x_.dH, BP * D, st);
  projBack(1, p.H1, proj + po.fc2W, x_.dH, x_.dFeat);
  L_.geluErfBackward(p.Z1, x_.dFeat, x_.dFeat, BP * c.projHidden, st);
  projBack(0, x_.Feat, proj + po.fc1W, x_.dFeat, x_.dH);  // dH: d features (st·BP × visionDim)
  // The towers from their columns of the features' gradient.
  for (int k = 0; k < 2; ++k)
    vitBackward(L_, towerShape_[k], towerBlocks(k), vitLoraOf(lay_.tower[k], P, c.tower[k].run()), lay_.tower[k], st,
                x_.dH, c.visionDim(), k == 0 ? 0 : c.tower[0].D, x_.tower[k], gradsOut(), towerBf16(k));
  return readLosses(L_, x_.losses, mode_.retention);
}

}  // namespace

ModelStepResult vlaPolicyStep(Layers& layers, const VlaConfig& c, const VlaStepArgs& a) {
  return VlaPolicyStep(layers, c, a).run();
}

}  // namespace craftgrad
