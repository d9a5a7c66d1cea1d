// AdapterPolicy on a CUDA device, as a sequence of CudaLayers operations (layers_cuda.h):
// the step model_kernels.cu had, call for call, with its kernels now CudaLayers'.
// Temporary: the backend-neutral driver (native/models/adapter_policy.cc) replaces it.
#include <algorithm>

#include "../core/layers.h"
#include "device_scratch.h"
#include "model_cuda.h"

namespace craftgrad {
namespace cuda {

ModelStepResult modelStep(Layers& L, const ModelConfig& c, const ModelStepArgs& a) {
  const ModelLayout lay = modelLayout(c);
  const long long B = a.batch, T = c.T, D = c.D, r = c.r, F = c.F(), Hd = c.H, KA = c.actionDim();
  const long long M = B * T, MD = M * D, n = c.activeBlocks();
  const bool withRet = a.mode == ModelMode::Craft || a.mode == ModelMode::EvalRet;
  const bool withGrad = a.mode == ModelMode::Craft || a.mode == ModelMode::Baseline;
  const long long S = a.mode == ModelMode::Craft ? 2 : 1;
  const float* P = a.params;
  const Pooling pooling = c.pool;
  L.checkExtent(std::max({S * M, MD, B * std::max(F, Hd)}), "the CUDA model");
  auto gemm = [&](long long m, long long nn, long long k, float alpha, LayerMat A, LayerMat Bm, float beta, float* C,
                  long long ldc) { L.gemm(LayerProduct{m, nn, k, alpha, A, Bm, beta, C, ldc}); };

  Carver sizing{nullptr};
  auto plan = [&](Carver& cv) {
    struct Bufs {
      float *Weff, *WeffA, *Hs, *Zs, *Hping, *Zping, *f, *fa, *Y1, *G1, *O, *dO, *dF, *dY1, *G, *dZ, *u, *V, *tok, *act;
      int *argR, *argAq, *argR0, *argAq0;
      double *terms, *losses;
    } b;
    b.Weff = cv.take<float>(n * D * D);
    b.WeffA = cv.take<float>(D * D);
    b.Hs = cv.take<float>((n + 1) * MD);
    b.Zs = cv.take<float>(n * MD);
    b.Hping = cv.take<float>(2 * MD);
    b.Zping = cv.take<float>(MD);
    b.f = cv.take<float>(B * F);
    b.fa = cv.take<float>(B * F);
    b.Y1 = cv.take<float>(B * Hd);
    b.G1 = cv.take<float>(B * Hd);
    b.O = cv.take<float>(B * KA);
    b.dO = cv.take<float>(B * KA);
    b.dF = cv.take<float>(S * B * F);
    b.dY1 = cv.take<float>(B * Hd);
    b.G = cv.take<float>(S * MD);
    b.dZ = cv.take<float>(S * MD);
    b.u = cv.take<float>(M * r);
    b.V = cv.take<float>(S * M * r);
    b.tok = cv.take<float>(MD);
    b.act = cv.take<float>(B * KA);
    b.argR = cv.take<int>(B * D);
    b.argAq = cv.take<int>(B * D);
    b.argR0 = cv.take<int>(B * D);
    b.argAq0 = cv.take<int>(B * D);
    b.terms = cv.take<double>(std::max(B * KA, B * F));
    b.losses = cv.take<double>(2);
    return b;
  };
  plan(sizing);
  const auto lease = L.lease(sizing.used);
  Carver cv{lease->data()};
  const auto bf = plan(cv);

  L.upload(bf.tok, a.tokens, sizeof(float) * MD);
  L.upload(bf.act, a.actions, sizeof(float) * B * KA);

  auto poolAt = [&](long long off) {
    PoolShape s;
    s.B = B, s.T = T, s.D = D, s.F = F, s.t0 = 0, s.n = T, s.off = off, s.pool = pooling;
    return s;
  };
  auto features = [&](const float* lora, float* Weff, float* H, float* Z, bool keep, float* f, int* argR, int* argAq) {
    L.copy(H, bf.tok, MD);
    for (long long l = 0; l < n; ++l) {
      float* Wl = keep ? Weff + l * D * D : Weff;
      L.copy(Wl, a.frozen + lay.baseW[l], D * D);
      gemm(D, D, r, c.loraScale(), LayerMat{lora + lay.loraB[l], r, false}, LayerMat{lora + lay.loraA[l], D, false}, 1.0f,
           Wl, D);
      const float* Hin = keep ? H + l * MD : H + (l % 2) * MD;
      float* Hout = keep ? H + (l + 1) * MD : H + ((l + 1) % 2) * MD;
      float* Zl = keep ? Z + l * MD : Z;
      gemm(M, D, D, 1.0f, LayerMat{Hin, D, false}, LayerMat{Wl, D, true}, 0.0f, Zl, D);
      L.biasGelu(Zl, a.frozen + lay.baseB[l], Hin, Hout, M, D);
      if (l + 1 == c.m && c.usesRaw()) L.pool(poolAt(c.rawOffset()), Hout, f, argR);
      if (l + 1 == c.L && c.usesAq()) L.pool(poolAt(c.aqOffset()), Hout, f, argAq);
    }
  };

  // ---- forward ----
  features(P, bf.Weff, bf.Hs, bf.Zs, true, bf.f, bf.argR, bf.argAq);
  gemm(B, Hd, F, 1.0f, LayerMat{bf.f, F, false}, LayerMat{P + lay.fc1w, F, true}, 0.0f, bf.Y1, Hd);
  L.biasGelu(bf.Y1, P + lay.fc1b, nullptr, bf.G1, B, Hd);
  gemm(B, KA, Hd, 1.0f, LayerMat{bf.G1, Hd, false}, LayerMat{P + lay.fc2w, Hd, true}, 0.0f, bf.O, KA);
  L.l1Loss(bf.O, P + lay.fc2b, bf.act, bf.dO, B, KA, bf.terms, bf.losses);
  if (withRet) {
    features(a.anchor, bf.WeffA, bf.Hping, bf.Zping, false, bf.fa, bf.argR0, bf.argAq0);
    L.mseLoss(bf.f, bf.fa, S == 2 ? bf.dF + B * F : nullptr, B * F, bf.terms, bf.losses + 1);
  }

  if (withGrad) {
    const float sc2 = a.scale, beta = a.accumulate ? 1.0f : 0.0f;
    float* gA = a.gAct;
    gemm(KA, Hd, B, sc2, LayerMat{bf.dO, KA, true}, LayerMat{bf.G1, Hd, false}, beta, gA + lay.fc2w, Hd);
    L.columnSum(bf.dO, B, KA, KA, sc2, a.accumulate, gA + lay.fc2b);
    gemm(B, Hd, KA, 1.0f, LayerMat{bf.dO, KA, false}, LayerMat{P + lay.fc2w, Hd, false}, 0.0f, bf.dY1, Hd);
    L.geluBackward(bf.Y1, bf.dY1, bf.dY1, B * Hd, 1);
    gemm(Hd, F, B, sc2, LayerMat{bf.dY1, Hd, true}, LayerMat{bf.f, F, false}, beta, gA + lay.fc1w, F);
    L.columnSum(bf.dY1, B, Hd, Hd, sc2, a.accumulate, gA + lay.fc1b);
    gemm(B, F, Hd, 1.0f, LayerMat{bf.dY1, Hd, false}, LayerMat{P + lay.fc1w, F, false}, 0.0f, bf.dF, F);
    if (S == 2 && !a.accumulate) L.zero(a.gRet + lay.fc1w, lay.paramCount - lay.fc1w);
    float* gOut[2] = {a.gAct, a.gRet};

    L.zero(bf.G, S * MD);
    const float sl = c.loraScale() * sc2;
    for (long long l = n - 1; l >= 0; --l) {
      for (long long s = 0; s < S; ++s) {
        if (l + 1 == c.L && c.usesAq()) L.poolBackward(poolAt(c.aqOffset()), bf.dF + s * B * F, bf.argAq, bf.G + s * MD);
        if (l + 1 == c.m && c.usesRaw()) L.poolBackward(poolAt(c.rawOffset()), bf.dF + s * B * F, bf.argR, bf.G + s * MD);
      }
      const float* Zl = bf.Zs + l * MD;
      const float* Hl = bf.Hs + l * MD;
      L.geluBackward(Zl, bf.G, bf.dZ, MD, static_cast<int>(S));
      const float* Al = P + lay.loraA[l];
      const float* Bl = P + lay.loraB[l];
      gemm(M, r, D, 1.0f, LayerMat{Hl, D, false}, LayerMat{Al, D, true}, 0.0f, bf.u, r);
      gemm(S * M, r, D, 1.0f, LayerMat{bf.dZ, D, false}, LayerMat{Bl, r, false}, 0.0f, bf.V, r);
      // The LoRA gradients of both streams: independent products, one launch.
      LayerProduct grads[4];
      int ng = 0;
      for (long long s = 0; s < S; ++s) {
        grads[ng++] = LayerProduct{D, r, M, sl, LayerMat{bf.dZ + s * MD, D, true}, LayerMat{bf.u, r, false}, beta,
                                   gOut[s] + lay.loraB[l], r};
        grads[ng++] = LayerProduct{r, D, M, sl, LayerMat{bf.V + s * M * r, r, true}, LayerMat{Hl, D, false}, beta,
                                   gOut[s] + lay.loraA[l], D};
      }
      L.gemmBatch(grads, ng);
      if (l > 0) gemm(S * M, D, D, 1.0f, LayerMat{bf.dZ, D, false}, LayerMat{bf.Weff + l * D * D, D, false}, 1.0f, bf.G, D);
    }
    if (!a.accumulate)
      for (long long l = n; l < c.L; ++l)
        for (long long s = 0; s < S; ++s) {
          L.zero(gOut[s] + lay.loraA[l], r * D);
          L.zero(gOut[s] + lay.loraB[l], D * r);
        }
  }
  double losses[2] = {0, 0};
  L.download(losses, bf.losses, sizeof(double) * (withRet ? 2 : 1));
  ModelStepResult res;
  res.actionLoss = losses[0];
  res.retentionLoss = withRet ? losses[1] : 0.0;
  return res;
}

}  // namespace cuda
}  // namespace craftgrad
