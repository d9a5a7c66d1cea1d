#include "action_head.h"

namespace craftgrad {

void actionHeadForward(Layers& L, const ActionHead& h, int64_t rows, const float* X, const float* Y, ActionHeadActs& x,
                       double* terms, double* loss) {
  L.gemm({rows, h.hidden, h.in, 1.0f, {X, h.in, false}, {h.fc1w, h.in, true}, 0.0f, x.Z1, h.hidden});
  L.biasGelu(x.Z1, h.fc1b, nullptr, x.G1, rows, h.hidden);
  L.gemm({rows, h.out, h.hidden, 1.0f, {x.G1, h.hidden, false}, {h.fc2w, h.hidden, true}, 0.0f, x.O, h.out});
  L.l1Loss(x.O, h.fc2b, Y, x.dO, rows, h.out, terms, loss);
}

void actionHeadBackward(Layers& L, const ActionHead& h, int64_t rows, const float* X, const ActionHeadActs& x,
                        const ActionHeadGrads& g, float scale, bool accumulate, float* dZ1, float* dX) {
  const float beta = accumulate ? 1.0f : 0.0f;
  L.gemm({h.out, h.hidden, rows, scale, {x.dO, h.out, true}, {x.G1, h.hidden, false}, beta, g.fc2w, h.hidden});
  L.columnSum(x.dO, rows, h.out, h.out, scale, accumulate, g.fc2b);
  L.gemm({rows, h.hidden, h.out, 1.0f, {x.dO, h.out, false}, {h.fc2w, h.hidden, false}, 0.0f, dZ1, h.hidden});
  L.geluBackward(x.Z1, dZ1, dZ1, rows * h.hidden, 1);
  L.gemm({h.hidden, h.in, rows, scale, {dZ1, h.hidden, true}, {X, h.in, false}, beta, g.fc1w, h.in});
  L.columnSum(dZ1, rows, h.hidden, h.hidden, scale, accumulate, g.fc1b);
  L.gemm({rows, h.in, h.hidden, 1.0f, {dZ1, h.hidden, false}, {h.fc1w, h.in, false}, 0.0f, dX, h.in});
}

void actionHeadStepBackward(Layers& L, const ActionHead& h, int64_t rows, const float* X, const ActionHeadActs& x,
                            const HeadOffsets& o, float* gAct, float* gRet, float scale, bool accumulate, float* dZ1,
                            float* dX) {
  actionHeadBackward(L, h, rows, X, x, {gAct + o.fc1w, gAct + o.fc1b, gAct + o.fc2w, gAct + o.fc2b}, scale, accumulate,
                     dZ1, dX);
  if (gRet && !accumulate) L.zero(gRet + o.fc1w, o.end - o.fc1w);
}

}  // namespace craftgrad
