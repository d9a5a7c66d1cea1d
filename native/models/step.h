// What every model's step shares around its layers: what a mode computes, staging host
// inputs into the workspace, and reading the losses back at the end.
#pragma once
#include <cstddef>
#include <cstdint>

#include "../core/layers.h"
#include "../core/model_desc.h"
#include "workspace.h"

namespace craftgrad {

struct StepMode {
  bool retention;  // the anchor forward and the retention loss
  bool gradients;  // a backward (the action stream, and the retention stream in Craft)
  int streams;     // gradient streams through the backward: 2 in Craft, else 1
};

inline StepMode stepMode(ModelMode m) {
  return {m == ModelMode::Craft || m == ModelMode::EvalRet, m == ModelMode::Craft || m == ModelMode::Baseline,
          m == ModelMode::Craft ? 2 : 1};
}

// A host input the kernels read: used in place on a host backend, else carved from the
// workspace and uploaded (while counting, only sized). n = 0 gives null.
template <typename T>
const T* stage(Layers& L, Workspace& w, const T* host, int64_t n) {
  if (n == 0) return nullptr;
  if (L.hostMemory()) return host;
  T* p = w.take<T>(n);
  if (p) L.upload(p, host, sizeof(T) * static_cast<size_t>(n));
  return p;
}

// Waits for the step and reads its losses (action, then retention when computed).
inline ModelStepResult readLosses(Layers& L, const double* losses, bool retention) {
  double v[2] = {0, 0};
  L.download(v, losses, sizeof(double) * (retention ? 2 : 1));
  ModelStepResult r;
  r.actionLoss = v[0];
  r.retentionLoss = retention ? v[1] : 0.0;
  return r;
}

}  // namespace craftgrad
