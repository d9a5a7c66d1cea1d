#include "model_desc.h"

#include <cmath>

namespace craftgrad {

ModelLayout modelLayout(const ModelConfig& c) {
  ModelLayout l;
  int64_t o = 0;
  for (int64_t b = 0; b < c.L; ++b) {
    l.loraA.push_back(o);
    o += c.r * c.D;
    l.loraB.push_back(o);
    o += c.D * c.r;
  }
  l.anchorCount = o;
  l.fc1w = o;
  o += c.H * c.F();
  l.fc1b = o;
  o += c.H;
  l.fc2w = o;
  o += c.actionDim() * c.H;
  l.fc2b = o;
  o += c.actionDim();
  l.paramCount = o;
  int64_t f = 0;
  for (int64_t b = 0; b < c.L; ++b) {
    l.baseW.push_back(f);
    f += c.D * c.D;
    l.baseB.push_back(f);
    f += c.D;
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

ModelConfig unpackModelConfig(const double* v) {
  ModelConfig c;
  auto i = [&](int k) { return std::isfinite(v[k]) && v[k] == std::floor(v[k]) ? static_cast<int64_t>(v[k]) : -1; };
  c.T = i(0);
  c.D = i(1);
  c.L = i(2);
  c.r = i(3);
  c.alpha = v[4];
  c.m = i(5);
  c.pool = i(6) == 1 ? Pooling::Max : Pooling::Mean;
  c.anchor = i(7) == 1 ? AnchorType::AqOnly : (i(7) == 2 ? AnchorType::RawOnly : AnchorType::Concat);
  c.H = i(8);
  c.K = i(9);
  c.A = i(10);
  return c;
}

}  // namespace craftgrad
