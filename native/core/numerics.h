// The numeric contract shared by every backend (ARCHITECTURE.md §3).
//
// Reductions accumulate fp32 products in kLanes independent lanes over fixed blocks of
// kBlock elements; each block's lanes are combined in float64 by a fixed tree, blocks are
// summed in float64 in order within a chunk of kChunk elements, and chunks are summed in
// order per tensor. The decomposition depends only on the data layout, never on the
// thread count, so results are bit-identical for any number of threads. Products are
// rounded before they are added (no fused multiply-add in reductions) so that every
// instruction set gives the same bits; the write pass uses one fma per element.
#pragma once
#include <cstdint>

namespace craftgrad {

constexpr int kLanes = 16;
constexpr int64_t kBlock = 1024;              // elements per fp32 block
constexpr int64_t kChunk = 64 * kBlock;       // elements per unit of parallel work

// Combines the 16 fp32 lane partials of one block in float64, in a fixed tree order.
inline double combineLanes(const float lanes[kLanes]) {
  double s[kLanes];
  for (int j = 0; j < kLanes; ++j) s[j] = static_cast<double>(lanes[j]);
  for (int w = kLanes / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) s[j] += s[j + w];
  return s[0];
}

// The same tree over float64 lanes: the overflow fallback. A block whose fp32 lanes
// overflow on finite data (|x| > ~1.8e19, e.g. exploding gradients) is summed again with
// float64 lanes (same lanes, same order) and combined by this tree; every other block
// keeps its fp32 sums. Per block, so the fallback costs what overflowed and nothing else.
inline double combineLanes64(const double lanes[kLanes]) {
  double s[kLanes];
  for (int j = 0; j < kLanes; ++j) s[j] = lanes[j];
  for (int w = kLanes / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) s[j] += s[j + w];
  return s[0];
}

// Per-tensor statistics of pass 1.
struct ReduceSums {
  double dot = 0.0;     // <a, r>
  double rr = 0.0;      // <r, r>
  double aa = 0.0;      // <a, a>
  bool nonFinite = false;

  void add(const ReduceSums& o) {
    dot += o.dot;
    rr += o.rr;
    aa += o.aa;
    nonFinite = nonFinite || o.nonFinite;
  }
};

struct SurgeryParams {
  double lambda = 0.0;
  double eps = 1e-8;
  bool projection = true;
};

// c_i = λ − (conflict ? d/(q+eps) : 0), conflict iff projection and d < 0.
inline double surgeryCoefficient(const ReduceSums& s, const SurgeryParams& p, bool* conflict) {
  const bool c = p.projection && s.dot < 0.0;
  *conflict = c;
  return p.lambda - (c ? s.dot / (s.rr + p.eps) : 0.0);
}

// ‖out‖² of one tensor from pass 1 alone: ‖a + c·r‖² = aa + 2c·d + c²·q (clamped at 0).
// Caveat: when a is nearly anti-parallel to r the terms cancel (‖ã‖² = aa − d²/q with
// projection) and the result keeps only about aa·2^-52 absolute accuracy, unlike the
// standalone surgery, which sums the squares of the values it wrote. It only feeds the
// reported norm and the clipping factor (craftReduce, craftCombine).
inline double outSquaredNorm(const ReduceSums& s, double c) {
  const double sq = s.aa + 2.0 * c * s.dot + c * c * s.rr;
  return sq > 0.0 ? sq : 0.0;
}

// Everything the primitive reports about one tensor.
struct TensorStats {
  double dot = 0.0, rr = 0.0, aa = 0.0;
  double coefficient = 0.0;
  double outSq = 0.0;   // ‖out_i‖²
  bool conflict = false;
  bool nonFinite = false;
};

}  // namespace craftgrad
