#include "model_desc.h"

#include <cmath>

namespace craftgrad {

ModelTensors modelTensors(const ModelConfig& c) {
  ModelTensors t;
  for (int64_t l = 0; l < c.L; ++l) {
    const std::string block = "blocks." + std::to_string(l) + ".";
    t.trainable.push_back({block + "lora_A", {c.r, c.D}});
    t.trainable.push_back({block + "lora_B", {c.D, c.r}});
    t.frozen.push_back({block + "weight", {c.D, c.D}});
    t.frozen.push_back({block + "bias", {c.D}});
  }
  t.anchor = t.trainable;  // the initial LoRA weights: the first 2L trainable tensors
  t.trainable.push_back({"head.fc1.weight", {c.H, c.F()}});
  t.trainable.push_back({"head.fc1.bias", {c.H}});
  t.trainable.push_back({"head.fc2.weight", {c.actionDim(), c.H}});
  t.trainable.push_back({"head.fc2.bias", {c.actionDim()}});
  return t;
}

ModelLayout modelLayout(const ModelConfig& c) {
  const ModelTensors t = modelTensors(c);
  ModelLayout l;
  int64_t o = 0;
  std::vector<int64_t> offsets;
  for (const TensorDesc& d : t.trainable) {
    offsets.push_back(o);
    o += d.size();
  }
  for (int64_t b = 0; b < c.L; ++b) {
    l.loraA.push_back(offsets[2 * b]);
    l.loraB.push_back(offsets[2 * b + 1]);
  }
  l.anchorCount = c.L > 0 ? offsets[2 * c.L] : 0;
  l.fc1w = offsets[2 * c.L];
  l.fc1b = offsets[2 * c.L + 1];
  l.fc2w = offsets[2 * c.L + 2];
  l.fc2b = offsets[2 * c.L + 3];
  l.paramCount = o;
  int64_t f = 0;
  for (int64_t b = 0; b < c.L; ++b) {
    l.baseW.push_back(f);
    f += t.frozen[2 * b].size();
    l.baseB.push_back(f);
    f += t.frozen[2 * b + 1].size();
  }
  l.frozenCount = f;
  return l;
}

std::string modelConfigError(const ModelConfig& c) {
  // Bounds keep every size product far below 2^53 and every index in int64.
  const struct { const char* name; int64_t v, lo, hi; } dims[] = {
      {"T", c.T, 1, 1 << 16}, {"D", c.D, 1, 1 << 14}, {"L", c.L, 1, 1024}, {"r", c.r, 1, 1 << 14},
      {"H", c.H, 1, 1 << 16}, {"K", c.K, 1, 1 << 12}, {"A", c.A, 1, 1 << 12}};
  for (const auto& d : dims)
    if (d.v < d.lo || d.v > d.hi)
      return std::string("config.") + d.name + " must be an integer from " + std::to_string(d.lo) + " to " +
             std::to_string(d.hi) + ", got " + std::to_string(d.v);
  if (c.m < 1 || c.m > c.L)
    return "config.bridgeBlock must be an integer from 1 to L=" + std::to_string(c.L) + ", got " + std::to_string(c.m);
  if (!std::isfinite(c.alpha) || c.alpha <= 0) return "config.alpha must be a finite number > 0";
  return "";
}

}  // namespace craftgrad
