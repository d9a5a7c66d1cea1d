#include "adamw_call.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../core/adamw_params.h"
#include "../core/backend.h"
#include "../core/numerics.h"
#include "arg_error.h"
#include "op_call.h"
#include "operands.h"
#include "options.h"
#include "surgery_call.h"
#include "tensor_set.h"

namespace craftgrad {
namespace {

std::string num(double d) { return std::to_string(d); }

// A number that must be finite and in the given range (RangeError naming it otherwise).
double readRange(const Options& o, const char* name, double lo, bool loInclusive, double hi, bool hiInclusive) {
  const double d = o.number(name);
  const bool ok = std::isfinite(d) && (loInclusive ? d >= lo : d > lo) && (hiInclusive ? d <= hi : d < hi);
  if (!ok)
    throw rangeError(std::string(name) + " must be a finite number in " + (loInclusive ? "[" : "(") + num(lo) + ", " +
                     (std::isinf(hi) ? std::string("inf") : num(hi)) + (hiInclusive ? "]" : ")") + ", got " + num(d));
  return d;
}

AdamWParams readAdamW(const Options& o) {
  const double inf = INFINITY;
  AdamWParams p;
  p.lr = readRange(o, "lr", 0, true, inf, false);
  p.beta1 = readRange(o, "beta1", 0, true, 1, false);
  p.beta2 = readRange(o, "beta2", 0, true, 1, false);
  p.eps = readRange(o, "eps", 0, false, inf, false);
  p.weightDecay = readRange(o, "weightDecay", 0, true, inf, false);
  p.step = readRange(o, "step", 1, true, 9007199254740991.0, true);
  if (p.step != std::floor(p.step)) throw rangeError("step must be an integer >= 1, got " + num(p.step));
  p.gradScale = readRange(o, "gradScale", 0, true, inf, false);
  return p;
}

// A Float64Array of finite values (its length is checked against the layout later).
Napi::Float64Array readCoefficients(const Options& o) {
  Napi::Value v(o.env(), o.get("coefficients"));
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw typeError("coefficients must be a Float64Array");
  return v.As<Napi::Float64Array>();
}

// craftReduce's result from the per-tensor sums: conflicts, coefficients, the norm of out
// (in tensor order: deterministic), and the sums themselves (for the sharded step, which adds
// the pieces' sums across ranks and calls craftCombine).
Napi::Value craftResult(Napi::Env env, const std::vector<ReduceSums>& sums, const SurgeryParams& params) {
  const size_t k = sums.size();
  Napi::Uint8Array conflicts = Napi::Uint8Array::New(env, k);
  Napi::Float64Array dots = Napi::Float64Array::New(env, k);
  Napi::Float64Array rr = Napi::Float64Array::New(env, k);
  Napi::Float64Array aa = Napi::Float64Array::New(env, k);
  Napi::Uint8Array flags = Napi::Uint8Array::New(env, k);
  Napi::Float64Array coefficients = Napi::Float64Array::New(env, k);
  uint32_t numConflicts = 0, nonFinite = 0;
  double normSq = 0.0;
  for (size_t i = 0; i < k; ++i) {
    bool conflict;
    const double c = surgeryCoefficient(sums[i], params, &conflict);
    conflicts[i] = conflict ? 1 : 0;
    dots[i] = sums[i].dot;
    rr[i] = sums[i].rr;
    aa[i] = sums[i].aa;
    flags[i] = sums[i].nonFinite ? 1 : 0;
    coefficients[i] = c;
    numConflicts += conflict ? 1 : 0;
    nonFinite += sums[i].nonFinite ? 1 : 0;
    normSq += outSquaredNorm(sums[i], c);
  }
  Napi::Object res = Napi::Object::New(env);
  res.Set("conflicts", conflicts);
  res.Set("dots", dots);
  res.Set("retNormsSq", rr);
  res.Set("actNormsSq", aa);
  res.Set("nonFiniteFlags", flags);
  res.Set("coefficients", coefficients);
  setSurgeryTotals(env, res, k, numConflicts, normSq, nonFinite);
  return res;
}

// The operands of these calls are TensorSets like the first one (device, length, sizes:
// Operands::requireSetsLike); adamwFused's and adamw's params, m and v are written and
// overlap no other operand (Operands::requireDisjoint).
struct CraftReduceOp {
  static constexpr const char* kName = "craftgrad.craftReduce";
  Backend* backend = nullptr;
  std::shared_ptr<Layout> layout;
  const float *a = nullptr, *r = nullptr;  // memory in hold
  SurgeryParams params;
  std::vector<ReduceSums> sums;
  JsHold hold;

  static CraftReduceOp parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CraftReduceOp op;
    op.params = readSurgeryParams(Options(env, info[2], "options"));
    Operands ops(env, &op.hold);
    TensorSetWrap* a = ops.set(info[0], "act", Access::Read);
    TensorSetWrap* r = ops.set(info[1], "ret", Access::Read);  // ret may be act
    ops.requireSetsLike(a);
    op.backend = &a->backend();
    op.layout = a->layout();
    op.a = a->data();
    op.r = r->data();
    return op;
  }
  void compute() {
    sums.resize(static_cast<size_t>(layout->count()));
    backend->reduce(*layout, a, r, sums.data());
  }
  Napi::Value result(Napi::Env env) { return craftResult(env, sums, params); }
};

// craftCombine({dots, retNormsSq, actNormsSq, nonFiniteFlags}, options): craftReduce's result
// from per-tensor sums computed elsewhere (the sharded step adds the pieces' sums of every
// rank in rank order first): the same coefficients, flags and norm as craftReduce would give
// for those sums, by the same code.
struct CraftCombineOp {
  static constexpr const char* kName = "craftgrad.craftCombine";
  std::vector<ReduceSums> sums;
  SurgeryParams params;

  static Napi::Float64Array readF64(const Options& o, const char* name) {
    Napi::Value v(o.env(), o.get(name));
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      throw typeError(std::string("sums.") + name + " must be a Float64Array, got " + describeValue(o.env(), v));
    return v.As<Napi::Float64Array>();
  }
  static CraftCombineOp parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CraftCombineOp op;
    const Options s(env, info[0], "sums");
    const Napi::Float64Array d = readF64(s, "dots"), q = readF64(s, "retNormsSq"), aa = readF64(s, "actNormsSq");
    Napi::Value f(env, s.get("nonFiniteFlags"));
    if (!f.IsTypedArray() || f.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      throw typeError("sums.nonFiniteFlags must be a Uint8Array, got " + describeValue(env, f));
    const Napi::Uint8Array flags = f.As<Napi::Uint8Array>();
    const size_t k = d.ElementLength();
    if (q.ElementLength() != k || aa.ElementLength() != k || flags.ElementLength() != k)
      throw rangeError("sums.dots, sums.retNormsSq, sums.actNormsSq and sums.nonFiniteFlags must have one entry per tensor (" +
                       std::to_string(k) + ", " + std::to_string(q.ElementLength()) + ", " + std::to_string(aa.ElementLength()) +
                       ", " + std::to_string(flags.ElementLength()) + ")");
    op.params = readSurgeryParams(Options(env, info[1], "options"));
    op.sums.resize(k);
    for (size_t i = 0; i < k; ++i) {
      op.sums[i].dot = d[i];
      op.sums[i].rr = q[i];
      op.sums[i].aa = aa[i];
      op.sums[i].nonFinite = flags[i] != 0;
    }
    return op;
  }
  void compute() {}
  Napi::Value result(Napi::Env env) { return craftResult(env, sums, params); }
};

struct AdamWFusedOp {
  static constexpr const char* kName = "craftgrad.adamwFused";
  Backend* backend = nullptr;
  std::shared_ptr<Layout> layout;
  float *p = nullptr, *m = nullptr, *v = nullptr;  // memory in hold
  const float *a = nullptr, *r = nullptr;
  std::vector<double> coefficients;
  AdamWParams hp;
  JsHold hold;

  static AdamWFusedOp parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    AdamWFusedOp op;
    const Options o(env, info[5], "options");
    op.hp = readAdamW(o);
    const Napi::Float64Array coef = readCoefficients(o);
    Operands ops(env, &op.hold);
    TensorSetWrap* p = ops.set(info[0], "params", Access::Write);
    TensorSetWrap* m = ops.set(info[1], "m", Access::Write);
    TensorSetWrap* v = ops.set(info[2], "v", Access::Write);
    TensorSetWrap* a = ops.set(info[3], "act", Access::Read);
    TensorSetWrap* r = ops.set(info[4], "ret", Access::Read);
    ops.requireSetsLike(p);
    const size_t k = static_cast<size_t>(p->layout()->count());
    if (coef.ElementLength() != k)
      throw rangeError("coefficients has " + std::to_string(coef.ElementLength()) + " entries but there are " +
                       std::to_string(k) + " tensors");
    op.coefficients.assign(coef.Data(), coef.Data() + k);
    for (size_t i = 0; i < k; ++i)
      if (!std::isfinite(op.coefficients[i]))
        throw rangeError("coefficients[" + std::to_string(i) + "] must be finite, got " + num(op.coefficients[i]));
    ops.requireDisjoint();
    op.backend = &p->backend();
    op.layout = p->layout();
    op.p = p->data(), op.m = m->data(), op.v = v->data(), op.a = a->data(), op.r = r->data();
    return op;
  }
  void compute() { backend->adamwFused(*layout, a, r, coefficients.data(), p, m, v, hp); }
  Napi::Value result(Napi::Env env) { return env.Undefined(); }
};

struct AdamWOp {
  static constexpr const char* kName = "craftgrad.adamw";
  Backend* backend = nullptr;
  std::shared_ptr<Layout> layout;
  float *p = nullptr, *m = nullptr, *v = nullptr;  // memory in hold
  const float* g = nullptr;
  AdamWParams hp;
  JsHold hold;

  static AdamWOp parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    AdamWOp op;
    op.hp = readAdamW(Options(env, info[4], "options"));
    Operands ops(env, &op.hold);
    TensorSetWrap* p = ops.set(info[0], "params", Access::Write);
    TensorSetWrap* m = ops.set(info[1], "m", Access::Write);
    TensorSetWrap* v = ops.set(info[2], "v", Access::Write);
    TensorSetWrap* g = ops.set(info[3], "grad", Access::Read);
    ops.requireSetsLike(p);
    ops.requireDisjoint();
    op.backend = &p->backend();
    op.layout = p->layout();
    op.p = p->data(), op.m = m->data(), op.v = v->data(), op.g = g->data();
    return op;
  }
  void compute() { backend->adamw(*layout, g, p, m, v, hp); }
  Napi::Value result(Napi::Env env) { return env.Undefined(); }
};

}  // namespace

void registerAdamW(Napi::Env env, Napi::Object exports) {
  exports.Set("craftReduce", Napi::Function::New(env, callSync<CraftReduceOp>, "craftReduce"));
  exports.Set("craftCombine", Napi::Function::New(env, callSync<CraftCombineOp>, "craftCombine"));
  exports.Set("adamwFused", Napi::Function::New(env, callSync<AdamWFusedOp>, "adamwFused"));
  exports.Set("adamw", Napi::Function::New(env, callSync<AdamWOp>, "adamw"));
}

}  // namespace craftgrad
