// VLA-Adapter's Pro action head (L1RegressionActionHead with MLPResNetBlock_Pro; docs/VLA-ADAPTER.md
// §8, prismatic/models/action_heads.py:20-121, 287-410), written once over core/layers.h:
//   x = ReLU(fc1(LN1(x0)));  per block i (reading hidden state i+1):
//     q, k_self, v_self = Linear(x);  k/v_adapter = Linear([h_a; p]);  k/v_task = Linear(h_t)
//     Pro RoPE on q, k_self, k_adapter, k_task (positions from 0 in each group)
//     att = softmax([q·k_selfᵀ, q·k_adapterᵀ, tanh(g)·q·k_taskᵀ] / √hd) · [v_self; v_adapter; v_task]
//     x = ReLU(ffn.1(LN(o_proj(att) + x)))
//   out = fc2(LN2(x)), L1 loss against the normalised action chunk.
// Its backward is the action stream's alone (the retention loss never sees the head): it
// writes the head's gradients and returns the gradients at its inputs (each block's task and
// action hidden states, and the proprio token).
#pragma once
#include <cstdint>
#include <vector>

#include "../core/layers.h"
#include "../core/vla_desc.h"
#include "workspace.h"

namespace craftgrad {

struct ProHeadShape {
  const VlaConfig& c;
  const VlaLayout& lay;
  int64_t B, rows;  // rows = B·chunk
  int64_t Tk;       // keys per sample: chunk + Ka + P
  AttentionShape attention;
  ProHeadShape(const VlaConfig& cfg, const VlaLayout& layout, int64_t batch);
};

struct ProBlockActs {
  float *Q, *Ks, *Vs, *Ka, *Va, *Kt, *Vt, *K, *V, *rowMax, *rowSum, *Att, *Y, *mean, *rstd, *Yn, *Z, *Xout;
};

struct ProHeadBuffers {
  float *cosT, *sinT;         // Pro RoPE tables (max(chunk, Ka, P) positions × hd/2)
  float *X0, *mean1, *rstd1, *N1, *Z1, *X1;  // the input, LN1, fc1 (+bias), ReLU
  std::vector<ProBlockActs> blocks;
  float *mean2, *rstd2, *N2, *O, *dO;
  double* terms;
  // Backward scratch.
  float *dX, *dX2, *dY, *dN, *dAtt, *dQ, *dK, *dV, *dKs, *dKa, *dKt, *dVs, *dVa, *dVt, *dGate;
  float* attention;
};
void planProHead(const ProHeadShape& s, Layers& L, bool backward, Workspace& w, ProHeadBuffers& x);
// The rotary tables into the planned buffers (host tables staged by the caller).
int64_t proHeadRopePositions(const ProHeadShape& s);

// Inputs of block i: Had[i] (B·Ka × D: per sample its Q action states, then the proprio token)
// and Ht[i] (B·P × D: the task states). noise: chunk × A·D (backend memory) or null (zeros).
// P: the parameter set (head offsets from the layout). *loss: the mean L1.
void proHeadForward(Layers& L, const ProHeadShape& s, const float* P, const float* noise,
                    const std::vector<const float*>& Had, const std::vector<const float*>& Ht, const float* actions,
                    ProHeadBuffers& x, double* loss);

// The head's gradients (scale, accumulate as the step's) into g at the layout's offsets;
// dHad[i], dHt[i]: written, the gradients at block i's inputs.
void proHeadBackward(Layers& L, const ProHeadShape& s, const float* P, const std::vector<const float*>& Had,
                     const std::vector<const float*>& Ht, ProHeadBuffers& x, float* g, float scale, bool accumulate,
                     const std::vector<float*>& dHad, const std::vector<float*>& dHt);

}  // namespace craftgrad
