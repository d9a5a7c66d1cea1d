// The action head every policy ends in (ARCHITECTURE.md §4), written once over core/layers.h:
// X (rows × in) → fc1 → GELU (tanh) → fc2 + bias → O, and the L1 loss against the target
// actions. The built-in model feeds it the pooled features (one row per sample), Qwen2 the
// final hidden states of its action queries (one row per query).
#pragma once
#include <cstdint>

#include "../core/layers.h"

namespace craftgrad {

struct ActionHead {
  const float *fc1w, *fc1b, *fc2w, *fc2b;  // (hidden × in), (hidden), (out × hidden), (out)
  int64_t in, hidden, out;
};

// What the forward keeps for the backward.
struct ActionHeadActs {
  float* Z1;  // rows × hidden: fc1's output plus bias (before the GELU)
  float* G1;  // rows × hidden: GELU(Z1)
  float* O;   // rows × out: fc2's product, before its bias
  float* dO;  // rows × out: d(L1 loss)/d output
};

// The forward and the loss: *loss = mean |O + b2 − Y| (terms: rows·out doubles of workspace).
void actionHeadForward(Layers& L, const ActionHead& h, int64_t rows, const float* X, const float* Y, ActionHeadActs& x,
                       double* terms, double* loss);

// The backward of the action loss: the head's gradients into gFc1w.. (same offsets as the
// parameters, in one set g), dZ1 (rows × hidden) as scratch, and dX (rows × in) = d loss/d X.
struct ActionHeadGrads {
  float *fc1w, *fc1b, *fc2w, *fc2b;
};
void actionHeadBackward(Layers& L, const ActionHead& h, int64_t rows, const float* X, const ActionHeadActs& x,
                        const ActionHeadGrads& g, float scale, bool accumulate, float* dZ1, float* dX);

// The head's part of a step's backward, for a model whose trainable set ends with the head
// (offsets fc1w, fc1b, fc2w, fc2b; the set's end): the action gradients into gAct; gRet's
// head range zeroed unless accumulating (the retention loss never sees the head; gRet null:
// no retention stream); dX as actionHeadBackward.
struct HeadOffsets {
  int64_t fc1w, fc1b, fc2w, fc2b, end;
};
void actionHeadStepBackward(Layers& L, const ActionHead& h, int64_t rows, const float* X, const ActionHeadActs& x,
                            const HeadOffsets& o, float* gAct, float* gRet, float scale, bool accumulate, float* dZ1,
                            float* dX);

}  // namespace craftgrad
