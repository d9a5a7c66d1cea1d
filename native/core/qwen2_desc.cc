#include "qwen2_desc.h"

#include <cmath>

namespace craftgrad {

const char* qwen2LinearName(int linear) {
  static const char* const names[kQwen2Linears] = {"q_proj", "k_proj", "v_proj", "o_proj",
                                                   "gate_proj", "up_proj", "down_proj"};
  return names[linear];
}

int64_t Qwen2Config::linearOut(int linear) const {
  switch (static_cast<Qwen2Linear>(linear)) {
    case Qwen2Linear::Q: return qDim();
    case Qwen2Linear::K: case Qwen2Linear::V: return kvDim();
    case Qwen2Linear::O: case Qwen2Linear::Down: return D;
    default: return I;
  }
}

int64_t Qwen2Config::linearIn(int linear) const {
  switch (static_cast<Qwen2Linear>(linear)) {
    case Qwen2Linear::O: return qDim();
    case Qwen2Linear::Down: return I;
    default: return D;
  }
}

Qwen2LayerOffsets qwen2LayerOffsets(const Qwen2Config& c) {
  Qwen2LayerOffsets o{};
  int64_t at = 0;
  auto take = [&](int64_t n) { const int64_t p = at; at += n; return p; };
  o.inNorm = take(c.D);
  o.qW = take(c.qDim() * c.D);
  o.qB = take(c.qDim());
  o.kW = take(c.kvDim() * c.D);
  o.kB = take(c.kvDim());
  o.vW = take(c.kvDim() * c.D);
  o.vB = take(c.kvDim());
  o.oW = take(c.D * c.qDim());
  o.postNorm = take(c.D);
  o.gate = take(c.I * c.D);
  o.up = take(c.I * c.D);
  o.down = take(c.D * c.I);
  o.floats = at;
  return o;
}

std::vector<TensorDesc> qwen2Trainable(const Qwen2Config& c) {
  std::vector<TensorDesc> t;
  for (int64_t l = 0; l < c.L; ++l)
    for (int i = 0; i < kQwen2Linears; ++i) {
      if (!c.targeted(i)) continue;
      const std::string group = i >= static_cast<int>(Qwen2Linear::Gate) ? "mlp" : "self_attn";
      const std::string base =
          "base_model.model.model.layers." + std::to_string(l) + "." + group + "." + qwen2LinearName(i) + ".lora_";
      t.push_back({base + "A.weight", {c.r, c.linearIn(i)}});
      t.push_back({base + "B.weight", {c.linearOut(i), c.r}});
    }
  t.push_back({"action_queries", {c.Q, c.D}});
  t.push_back({"head.fc1.weight", {c.Hh, c.D}});
  t.push_back({"head.fc1.bias", {c.Hh}});
  t.push_back({"head.fc2.weight", {c.A, c.Hh}});
  t.push_back({"head.fc2.bias", {c.A}});
  return t;
}

Qwen2Layout qwen2Layout(const Qwen2Config& c) {
  const std::vector<TensorDesc> t = qwen2Trainable(c);
  Qwen2Layout lay;
  lay.loraA.assign(c.L, std::vector<int64_t>(kQwen2Linears, -1));
  lay.loraB = lay.loraA;
  int64_t o = 0;
  size_t k = 0;
  for (int64_t l = 0; l < c.L; ++l)
    for (int i = 0; i < kQwen2Linears; ++i) {
      if (!c.targeted(i)) continue;
      lay.loraA[l][i] = o;
      o += t[k++].size();
      lay.loraB[l][i] = o;
      o += t[k++].size();
    }
  int64_t* heads[] = {&lay.queries, &lay.fc1w, &lay.fc1b, &lay.fc2w, &lay.fc2b};
  for (int64_t* h : heads) {
    *h = o;
    o += t[k++].size();
  }
  lay.anchorCount = lay.fc1w;
  lay.paramCount = o;
  return lay;
}

void qwen2RopeTables(const Qwen2Config& c, std::vector<float>& cosT, std::vector<float>& sinT) {
  // transformers: inv_freq = 1/θ^(2j/hd) in fp32, angle = t·inv_freq in fp32, cos/sin in fp32.
  const int64_t half = c.hd() / 2, T = c.T();
  cosT.assign(T * half, 0.0f);
  sinT.assign(T * half, 0.0f);
  for (int64_t j = 0; j < half; ++j) {
    const float inv = static_cast<float>(1.0 / std::pow(c.theta, static_cast<double>(2 * j) / static_cast<double>(c.hd())));
    for (int64_t t = 0; t < T; ++t) {
      const float ang = static_cast<float>(t) * inv;
      cosT[t * half + j] = static_cast<float>(std::cos(static_cast<double>(ang)));
      sinT[t * half + j] = static_cast<float>(std::sin(static_cast<double>(ang)));
    }
  }
}

std::string qwen2ConfigError(const Qwen2Config& c) {
  // Bounds keep every size product far below 2^53 and every index in int64.
  const struct { const char* name; int64_t v, lo, hi; } dims[] = {
      {"hiddenSize", c.D, 1, 1 << 15},      {"numLayers", c.L, 1, 1024},        {"numHeads", c.heads, 1, 1024},
      {"numKvHeads", c.kvHeads, 1, 1024},   {"intermediateSize", c.I, 1, 1 << 17}, {"vocabSize", c.V, 1, 1 << 24},
      {"prefixTokens", c.P, 0, 1 << 16},    {"promptTokens", c.S, 0, 1 << 16},  {"queries", c.Q, 1, 1 << 12},
      {"rank", c.r, 1, 1 << 14},            {"actionDims", c.A, 1, 1 << 12},    {"headWidth", c.Hh, 1, 1 << 16}};
  for (const auto& d : dims)
    if (d.v < d.lo || d.v > d.hi)
      return std::string("config.") + d.name + " must be an integer from " + std::to_string(d.lo) + " to " +
             std::to_string(d.hi) + ", got " + std::to_string(d.v);
  if (c.D % c.heads != 0) return "config.numHeads must divide hiddenSize";
  if (c.heads % c.kvHeads != 0) return "config.numKvHeads must divide numHeads";
  if (c.hd() % 2 != 0) return "config.hiddenSize / numHeads must be even (rotary embeddings)";
  if (c.m < 0 || c.m > c.L)
    return "config.bridgeLayer must be an integer from 0 to numLayers=" + std::to_string(c.L) + ", got " + std::to_string(c.m);
  if (c.usesRaw() && c.spanTokens() == 0)
    return std::string("config.bridgeSpan '") + (c.span == BridgeSpan::Prefix ? "prefix" : "prefix+prompt") +
           "' covers no tokens (prefixTokens" + (c.span == BridgeSpan::Prefix ? "" : " + promptTokens") + " is 0)";
  if (c.targets >= (1u << kQwen2Linears)) return "config.targets has an unknown linear layer";
  if (!std::isfinite(c.alpha) || c.alpha <= 0) return "config.alpha must be a finite number > 0";
  if (!std::isfinite(c.eps) || c.eps <= 0) return "config.rmsNormEps must be a finite number > 0";
  if (!std::isfinite(c.theta) || c.theta <= 0) return "config.ropeTheta must be a finite number > 0";
  return "";
}

}  // namespace craftgrad
