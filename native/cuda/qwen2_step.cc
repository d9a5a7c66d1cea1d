// The Qwen2 policy on a CUDA device (ARCHITECTURE.md §4b), as a sequence of CudaLayers
// operations (layers_cuda.h): the step qwen2_kernels.cu had, call for call, with its
// kernels now CudaLayers' (the mean-pooling backward now divides by n: core/layers.h).
// Temporary: the backend-neutral driver (native/models/qwen2_policy.cc) replaces it.
#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/layers.h"
#include "cuda_backend.h"
#include "device_scratch.h"
#include "qwen2_cuda.h"

namespace craftgrad {
namespace cuda {
namespace {

struct LayerActs {
  float *Y1, *r1, *Q, *K, *V, *rowMax, *rowSum, *Att, *X1, *Y2, *r2, *Gt, *Up, *Act;
  float* U[kQwen2Linears];
};

struct Lora {
  const float* A[kQwen2Linears];
  const float* B[kQwen2Linears];
};

class Step {
 public:
  Step(Layers& layers, const Qwen2Config& c, const Qwen2StepArgs& a)
      : L(layers), c_(c), a_(a), lay_(qwen2Layout(c)),
        off_(qwen2LayerOffsets(c)), B_(a.batch), T_(c.T()), M_(a.batch * c.T()), MD_(M_ * c.D) {}

  ModelStepResult run();

 private:
  struct Bufs {
    float *cosT, *sinT, *prefix, *actions;
    int* ids;
    float *Hs, *HN, *rN, *Hping, *HN0, *rN0, *f, *fA, *Z0, *Z1, *G1, *O, *dO, *dZ1, *dZ0, *dHN, *G, *dF;
    int *argR, *argAq, *argR0, *argAq0;
    float* attn;                                        // the attention's scratch (P, and dS for the backward)
    float *dAct, *dUp, *dY, *dAtt, *dQ, *dK, *dV, *Vt;  // a layer's backward
    double *terms, *losses;
    std::vector<LayerActs> acts;
    LayerActs anchorActs;
  };

  void plan(Carver& cv, Bufs& x) const;
  void allocActs(Carver& cv, LayerActs& l) const;
  Lora loraOf(const float* base, long long l) const;
  const float* layerW(long long l) const { return a_.layers[l]; }
  AttentionShape dims() const {
    AttentionShape s;
    s.B = B_, s.T = T_, s.heads = c_.heads, s.kvHeads = c_.kvHeads, s.hd = c_.hd();
    s.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c_.hd())));
    return s;
  }
  PoolShape poolShape(long long t0, long long n, long long off) const {
    PoolShape s;
    s.B = B_, s.T = T_, s.D = c_.D, s.F = c_.F(), s.t0 = t0, s.n = n, s.off = off, s.pool = c_.pool;
    return s;
  }
  void linearForward(int linear, const float* X, const float* W, const float* bias, const Lora& lora, float* U, float* Y);
  void layerForward(const float* W, const Lora& lora, const float* Xin, LayerActs& x, float* Xout);
  void forward(const float* w, long long layers, bool keep, float* Hs, std::vector<LayerActs>& acts, float* HN,
               float* rN, float* f, int* argR, int* argAq);
  void linearBackward(long long layer, int linear, int streams, const float* X, const float* W, const Lora& lora,
                      const float* U, const float* dY, float* dX, float beta, float* const g[2]);
  void layerBackward(long long layer, int streams, const float* W, const Lora& lora, const float* Xin, const LayerActs& x,
                     float* const g[2]);
  void pool(const float* H, long long t0, long long n, float* f, long long off, int* argmax) {
    L.pool(poolShape(t0, n, off), H, f, argmax);
  }
  void poolBack(const float* dF, long long t0, long long n, long long off, const int* argmax, float* G) {
    L.poolBackward(poolShape(t0, n, off), dF, argmax, G);
  }
  void rmsNorm(long long rows, const float* X, const float* w, float* Y, float* rstd) {
    L.rmsNorm(rows, c_.D, static_cast<float>(c_.eps), X, w, Y, rstd);
  }
  void rmsNormBack(long long rows, const float* dY, const float* X, const float* rstd, const float* w, float* dX) {
    L.rmsNormBackward(rows, M_, c_.D, dY, X, rstd, w, dX);
  }
  void rope(float* X, long long rows, long long width, bool inverse) {
    L.rope(X, rows, width, c_.hd(), T_, x_.cosT, x_.sinT, inverse);
  }
  void zero(float* p, long long n) { L.zero(p, n); }
  void gemm(long long m, long long n, long long k, float alpha, LayerMat A, LayerMat B, float beta, float* C,
            long long ldc) {
    L.gemm(LayerProduct{m, n, k, alpha, A, B, beta, C, ldc});
  }

  Layers& L;
  const Qwen2Config& c_;
  const Qwen2StepArgs& a_;
  Qwen2Layout lay_;
  Qwen2LayerOffsets off_;
  long long B_, T_, M_, MD_;
  bool keep_ = false, withRet_ = false;
  int streams_ = 1;
  Bufs x_{};
};

void Step::allocActs(Carver& cv, LayerActs& x) const {
  const long long M = M_, D = c_.D, rows = B_ * c_.heads * T_;
  x.Y1 = cv.take<float>(M * D);
  x.r1 = cv.take<float>(M);
  x.Q = cv.take<float>(M * c_.qDim());
  x.K = cv.take<float>(M * c_.kvDim());
  x.V = cv.take<float>(M * c_.kvDim());
  x.rowMax = cv.take<float>(rows);
  x.rowSum = cv.take<float>(rows);
  x.Att = cv.take<float>(M * c_.qDim());
  x.X1 = cv.take<float>(M * D);
  x.Y2 = cv.take<float>(M * D);
  x.r2 = cv.take<float>(M);
  x.Gt = cv.take<float>(M * c_.I);
  x.Up = cv.take<float>(M * c_.I);
  x.Act = cv.take<float>(M * c_.I);
  for (int i = 0; i < kQwen2Linears; ++i) x.U[i] = c_.targeted(i) ? cv.take<float>(M * c_.r) : nullptr;
}

void Step::plan(Carver& cv, Bufs& x) const {
  const long long D = c_.D, BQ = B_ * c_.Q, BF = B_ * c_.F(), SM = streams_ * M_, half = c_.hd() / 2;
  x.cosT = cv.take<float>(T_ * half);
  x.sinT = cv.take<float>(T_ * half);
  x.prefix = cv.take<float>(B_ * c_.P * D);
  x.ids = cv.take<int>(B_ * c_.S);
  x.actions = cv.take<float>(BQ * c_.A);
  x.Hs = cv.take<float>(keep_ ? (c_.L + 1) * MD_ : 2 * MD_);
  x.HN = cv.take<float>(MD_);
  x.rN = cv.take<float>(M_);
  x.f = cv.take<float>(BF);
  x.fA = cv.take<float>(BF);
  x.argR = cv.take<int>(B_ * D);
  x.argAq = cv.take<int>(B_ * D);
  x.argR0 = cv.take<int>(B_ * D);
  x.argAq0 = cv.take<int>(B_ * D);
  x.Z0 = cv.take<float>(BQ * D);
  x.Z1 = cv.take<float>(BQ * c_.Hh);
  x.G1 = cv.take<float>(BQ * c_.Hh);
  x.O = cv.take<float>(BQ * c_.A);
  x.dO = cv.take<float>(BQ * c_.A);
  x.acts.assign(keep_ ? c_.L : 1, LayerActs{});
  for (LayerActs& l : x.acts) allocActs(cv, l);
  x.Hping = x.HN0 = x.rN0 = nullptr;
  if (withRet_) {
    x.Hping = cv.take<float>(2 * MD_);
    x.HN0 = cv.take<float>(MD_);
    x.rN0 = cv.take<float>(M_);
    if (keep_) allocActs(cv, x.anchorActs);
    else x.anchorActs = x.acts[0];
  }
  x.attn = cv.take<float>(L.attentionScratch(dims(), keep_ ? streams_ : 0));
  x.terms = cv.take<double>(std::max(BQ * c_.A, BF));
  x.losses = cv.take<double>(2);
  if (keep_) {
    x.dZ1 = cv.take<float>(BQ * c_.Hh);
    x.dZ0 = cv.take<float>(BQ * D);
    x.dHN = cv.take<float>(SM * D);
    x.G = cv.take<float>(SM * D);
    x.dF = cv.take<float>(BF);
    x.dAct = cv.take<float>(SM * c_.I);
    x.dUp = cv.take<float>(SM * c_.I);
    x.dY = cv.take<float>(SM * D);
    x.dAtt = cv.take<float>(SM * c_.qDim());
    x.dQ = cv.take<float>(SM * c_.qDim());
    x.dK = cv.take<float>(SM * c_.kvDim());
    x.dV = cv.take<float>(SM * c_.kvDim());
    x.Vt = cv.take<float>(SM * c_.r);
  }
}

Lora Step::loraOf(const float* base, long long l) const {
  Lora x{};
  for (int i = 0; i < kQwen2Linears; ++i)
    if (c_.targeted(i)) {
      x.A[i] = base + lay_.loraA[l][i];
      x.B[i] = base + lay_.loraB[l][i];
    }
  return x;
}

// Y (M×out) = X·Wᵀ (+ bias) (+ s·U·Bᵀ with U = X·Aᵀ kept), PEFT's order: base, then LoRA.
void Step::linearForward(int linear, const float* X, const float* W, const float* bias, const Lora& lora, float* U,
                         float* Y) {
  const long long in = c_.linearIn(linear), out = c_.linearOut(linear), r = c_.r;
  gemm(M_, out, in, 1.0f, LayerMat{X, in, false}, LayerMat{W, in, true}, 0.0f, Y, out);
  if (bias) L.addBias(Y, bias, M_, out);
  if (lora.A[linear]) {
    gemm(M_, r, in, 1.0f, LayerMat{X, in, false}, LayerMat{lora.A[linear], in, true}, 0.0f, U, r);
    gemm(M_, out, r, c_.loraScale(), LayerMat{U, r, false}, LayerMat{lora.B[linear], r, true}, 1.0f, Y, out);
  }
}

void Step::layerForward(const float* W, const Lora& lora, const float* Xin, LayerActs& x, float* Xout) {
  const Qwen2LayerOffsets& o = off_;
  const AttentionShape s = dims();
  rmsNorm(M_, Xin, W + o.inNorm, x.Y1, x.r1);
  linearForward(0, x.Y1, W + o.qW, W + o.qB, lora, x.U[0], x.Q);
  linearForward(1, x.Y1, W + o.kW, W + o.kB, lora, x.U[1], x.K);
  linearForward(2, x.Y1, W + o.vW, W + o.vB, lora, x.U[2], x.V);
  rope(x.Q, M_, c_.qDim(), false);
  rope(x.K, M_, c_.kvDim(), false);
  L.attentionForward(s, x.Q, x.K, x.V, x.Att, x.rowMax, x.rowSum, x_.attn);
  linearForward(3, x.Att, W + o.oW, nullptr, lora, x.U[3], x.X1);
  L.add(x.X1, Xin, MD_);
  rmsNorm(M_, x.X1, W + o.postNorm, x.Y2, x.r2);
  linearForward(4, x.Y2, W + o.gate, nullptr, lora, x.U[4], x.Gt);
  linearForward(5, x.Y2, W + o.up, nullptr, lora, x.U[5], x.Up);
  L.swiglu(x.Gt, x.Up, x.Act, M_ * c_.I);
  linearForward(6, x.Act, W + o.down, nullptr, lora, x.U[6], Xout);
  L.add(Xout, x.X1, MD_);
}

void Step::forward(const float* w, long long layers, bool keep, float* Hs, std::vector<LayerActs>& acts, float* HN,
                   float* rN, float* f, int* argR, int* argAq) {
  const long long D = c_.D;
  L.embedSequence(Hs, x_.prefix, x_.ids, a_.embed, w + lay_.queries, B_, T_, c_.P, c_.S, D);
  const bool raw = c_.usesRaw();
  if (raw && c_.m == 0) pool(Hs, 0, c_.spanTokens(), f, c_.rawOffset(), argR);
  const float* last = Hs;
  for (long long l = 0; l < layers; ++l) {
    const float* Xin = keep ? Hs + l * MD_ : Hs + (l % 2) * MD_;
    float* Xout = keep ? Hs + (l + 1) * MD_ : Hs + ((l + 1) % 2) * MD_;
    layerForward(layerW(l), loraOf(w, l), Xin, acts[keep ? l : 0], Xout);
    if (raw && l + 1 == c_.m && c_.m < c_.L) pool(Xout, 0, c_.spanTokens(), f, c_.rawOffset(), argR);
    last = Xout;
  }
  if (layers < c_.L) return;
  rmsNorm(M_, last, a_.finalNorm, HN, rN);
  if (raw && c_.m == c_.L) pool(HN, 0, c_.spanTokens(), f, c_.rawOffset(), argR);
  if (c_.usesAq()) pool(HN, T_ - c_.Q, c_.Q, f, c_.aqOffset(), argAq);
}

// dX (streams·M × in) = beta·dX + dY·W (+ s·(dY·B)·A); per stream with a set g[st]:
// dB = s·dYᵀ·U, dA = s·(dY·B)ᵀ·X (one launch for every stream's two products).
void Step::linearBackward(long long layer, int linear, int streams, const float* X, const float* W, const Lora& lora,
                          const float* U, const float* dY, float* dX, float beta, float* const g[2]) {
  const long long in = c_.linearIn(linear), n = c_.linearOut(linear), r = c_.r, SM = streams * M_;
  gemm(SM, in, n, 1.0f, LayerMat{dY, n, false}, LayerMat{W, in, false}, beta, dX, in);
  if (!lora.A[linear]) return;
  const float sl = c_.loraScale();
  const float wbeta = a_.accumulate ? 1.0f : 0.0f;
  gemm(SM, r, n, 1.0f, LayerMat{dY, n, false}, LayerMat{lora.B[linear], r, false}, 0.0f, x_.Vt, r);
  gemm(SM, in, r, sl, LayerMat{x_.Vt, r, false}, LayerMat{lora.A[linear], in, false}, 1.0f, dX, in);
  LayerProduct grads[4];
  int ng = 0;
  for (int st = 0; st < streams; ++st) {
    if (!g[st]) continue;
    grads[ng++] = LayerProduct{n, r, M_, sl * a_.scale, LayerMat{dY + st * M_ * n, n, true}, LayerMat{U, r, false}, wbeta,
                          g[st] + lay_.loraB[layer][linear], r};
    grads[ng++] = LayerProduct{r, in, M_, sl * a_.scale, LayerMat{x_.Vt + st * M_ * r, r, true}, LayerMat{X, in, false}, wbeta,
                          g[st] + lay_.loraA[layer][linear], in};
  }
  L.gemmBatch(grads, ng);
}

// x_.G (streams·M × D) = d Xout on entry, d Xin on return.
void Step::layerBackward(long long layer, int streams, const float* W, const Lora& lora, const float* Xin,
                         const LayerActs& x, float* const g[2]) {
  const Qwen2LayerOffsets& o = off_;
  const long long SM = streams * M_;
  float* G = x_.G;
  const AttentionShape s = dims();
  linearBackward(layer, 6, streams, x.Act, W + o.down, lora, x.U[6], G, x_.dAct, 0.0f, g);
  L.swigluBackward(x.Gt, x.Up, x_.dAct, x_.dUp, SM * c_.I, M_ * c_.I);
  linearBackward(layer, 4, streams, x.Y2, W + o.gate, lora, x.U[4], x_.dAct, x_.dY, 0.0f, g);
  linearBackward(layer, 5, streams, x.Y2, W + o.up, lora, x.U[5], x_.dUp, x_.dY, 1.0f, g);
  rmsNormBack(SM, x_.dY, x.X1, x.r2, W + o.postNorm, G);  // G = d x1
  linearBackward(layer, 3, streams, x.Att, W + o.oW, lora, x.U[3], G, x_.dAtt, 0.0f, g);
  // Attention: the probabilities again (shared by the streams), then per stream dS and dQ, dK, dV.
  L.attentionBackward(s, streams, x.Q, x.K, x.V, x.rowMax, x.rowSum, x_.dAtt, x_.dQ, x_.dK, x_.dV, x_.attn);
  rope(x_.dQ, SM, c_.qDim(), true);
  rope(x_.dK, SM, c_.kvDim(), true);
  linearBackward(layer, 0, streams, x.Y1, W + o.qW, lora, x.U[0], x_.dQ, x_.dY, 0.0f, g);
  linearBackward(layer, 1, streams, x.Y1, W + o.kW, lora, x.U[1], x_.dK, x_.dY, 1.0f, g);
  linearBackward(layer, 2, streams, x.Y1, W + o.vW, lora, x.U[2], x_.dV, x_.dY, 1.0f, g);
  rmsNormBack(SM, x_.dY, Xin, x.r1, W + o.inNorm, G);  // G = d x
}

ModelStepResult Step::run() {
  const Qwen2Config& c = c_;
  const long long B = B_, T = T_, M = M_, MD = MD_, D = c.D, Q = c.Q, Ad = c.A, Hh = c.Hh, F = c.F();
  const long long BQ = B * Q, qTok = T - Q;
  withRet_ = a_.mode == ModelMode::Craft || a_.mode == ModelMode::EvalRet;
  keep_ = a_.mode == ModelMode::Craft || a_.mode == ModelMode::Baseline;
  streams_ = a_.mode == ModelMode::Craft ? 2 : 1;
  const float* P = a_.params;
  L.checkExtent(std::max({streams_ * MD, streams_ * M * std::max(c.I, c.qDim()), streams_ * B * c.heads * T * T,
                          streams_ * B * c.heads * T}),
                "the CUDA Qwen2 step");

  Carver sizing{nullptr};
  {
    Bufs tmp{};
    plan(sizing, tmp);
  }
  const auto lease = L.lease(sizing.used);
  Carver cv{lease->data()};
  plan(cv, x_);

  // Host inputs and the rotary tables into scratch. Pageable host memory: each copy has
  // left the host array when it returns.
  std::vector<float> cosT, sinT;
  qwen2RopeTables(c, cosT, sinT);
  L.upload(x_.cosT, cosT.data(), sizeof(float) * cosT.size());
  L.upload(x_.sinT, sinT.data(), sizeof(float) * sinT.size());
  if (c.P) L.upload(x_.prefix, a_.prefix, sizeof(float) * B * c.P * D);
  if (c.S) L.upload(x_.ids, a_.inputIds, sizeof(int32_t) * B * c.S);
  L.upload(x_.actions, a_.actions, sizeof(float) * BQ * Ad);

  // ---- forward (current weights) and the action head ----
  forward(P, c.L, keep_, x_.Hs, x_.acts, x_.HN, x_.rN, x_.f, x_.argR, x_.argAq);
  L.gatherRows(x_.Z0, x_.HN, B, T, D, qTok, Q, true);
  gemm(BQ, Hh, D, 1.0f, LayerMat{x_.Z0, D, false}, LayerMat{P + lay_.fc1w, D, true}, 0.0f, x_.Z1, Hh);
  L.biasGelu(x_.Z1, P + lay_.fc1b, nullptr, x_.G1, BQ, Hh);
  gemm(BQ, Ad, Hh, 1.0f, LayerMat{x_.G1, Hh, false}, LayerMat{P + lay_.fc2w, Hh, true}, 0.0f, x_.O, Ad);
  L.l1Loss(x_.O, P + lay_.fc2b, x_.actions, x_.dO, BQ, Ad, x_.terms, x_.losses);

  // ---- anchor forward: no gradient, anchor LoRA factors and queries in place ----
  if (withRet_) {
    const long long layers = c.usesAq() ? c.L : c.m;
    std::vector<LayerActs> one{x_.anchorActs};
    forward(a_.anchor, layers, false, x_.Hping, one, x_.HN0, x_.rN0, x_.fA, x_.argR0, x_.argAq0);
    L.mseLoss(x_.f, x_.fA, streams_ == 2 ? x_.dF : nullptr, B * F, x_.terms, x_.losses + 1);
  }

  if (keep_) {
    // ---- head backward (the action stream only) ----
    const float sc2 = a_.scale, beta = a_.accumulate ? 1.0f : 0.0f;
    float* gA = a_.gAct;
    gemm(Ad, Hh, BQ, sc2, LayerMat{x_.dO, Ad, true}, LayerMat{x_.G1, Hh, false}, beta, gA + lay_.fc2w, Hh);
    L.columnSum(x_.dO, BQ, Ad, Ad, sc2, a_.accumulate, gA + lay_.fc2b);
    gemm(BQ, Hh, Ad, 1.0f, LayerMat{x_.dO, Ad, false}, LayerMat{P + lay_.fc2w, Hh, false}, 0.0f, x_.dZ1, Hh);
    L.geluBackward(x_.Z1, x_.dZ1, x_.dZ1, BQ * Hh, 1);
    gemm(Hh, D, BQ, sc2, LayerMat{x_.dZ1, Hh, true}, LayerMat{x_.Z0, D, false}, beta, gA + lay_.fc1w, D);
    L.columnSum(x_.dZ1, BQ, Hh, Hh, sc2, a_.accumulate, gA + lay_.fc1b);
    gemm(BQ, D, Hh, 1.0f, LayerMat{x_.dZ1, Hh, false}, LayerMat{P + lay_.fc1w, D, false}, 0.0f, x_.dZ0, D);
    if (streams_ == 2 && !a_.accumulate) zero(a_.gRet + lay_.fc1w, lay_.paramCount - lay_.fc1w);

    // ---- d(final hidden states): the head's at the queries; the retention features' ----
    zero(x_.dHN, streams_ * MD);
    L.gatherRows(x_.dHN, x_.dZ0, B, T, D, qTok, Q, false);
    if (streams_ == 2) {
      float* dRet = x_.dHN + MD;
      if (c.usesAq()) poolBack(x_.dF, qTok, Q, c.aqOffset(), x_.argAq, dRet);
      if (c.usesRaw() && c.m == c.L) poolBack(x_.dF, 0, c.spanTokens(), c.rawOffset(), x_.argR, dRet);
    }
    zero(x_.G, streams_ * MD);
    rmsNormBack(streams_ * M, x_.dHN, x_.Hs + c.L * MD, x_.rN, a_.finalNorm, x_.G);

    // ---- layers, last to first ----
    bool retLive = false;
    for (long long l = c.L - 1; l >= 0; --l) {
      if (streams_ == 2 && c.usesRaw() && l + 1 == c.m && c.m < c.L)
        poolBack(x_.dF, 0, c.spanTokens(), c.rawOffset(), x_.argR, x_.G + MD);
      retLive = streams_ == 2 && (c.usesAq() || l + 1 <= c.m);
      float* g[2] = {a_.gAct, retLive ? a_.gRet : nullptr};
      if (streams_ == 2 && !retLive && !a_.accumulate)
        for (int i = 0; i < kQwen2Linears; ++i)
          if (c.targeted(i)) {
            zero(a_.gRet + lay_.loraA[l][i], c.r * c.linearIn(i));
            zero(a_.gRet + lay_.loraB[l][i], c.linearOut(i) * c.r);
          }
      layerBackward(l, retLive ? 2 : 1, layerW(l), loraOf(P, l), x_.Hs + l * MD, x_.acts[l], g);
    }

    // ---- action_queries: d(input sequence) at the query tokens, summed over the batch ----
    for (int s = 0; s < streams_; ++s) {
      float* g = s == 0 ? a_.gAct : a_.gRet;
      const bool live = s == 0 || retLive;
      L.columnSum(live ? x_.G + s * MD + qTok * D : nullptr, B, Q * D, T * D, sc2, a_.accumulate, g + lay_.queries);
    }
  }
  double losses[2] = {0, 0};
  L.download(losses, x_.losses, sizeof(double) * (withRet_ ? 2 : 1));
  ModelStepResult res;
  res.actionLoss = losses[0];
  res.retentionLoss = withRet_ ? losses[1] : 0.0;
  return res;
}

}  // namespace

ModelStepResult qwen2Step(Layers& layers, const Qwen2Config& c, const Qwen2StepArgs& a) {
  if (!a.frozenInBackend)
    throw CudaError("craftgrad: qwen2Step on CUDA needs the frozen weights in device memory (a TensorSet)");
  Step s(layers, c, a);
  return s.run();
}

}  // namespace cuda
}  // namespace craftgrad
