#include "adamw_call.h"

#include <cmath>
#include <string>
#include <vector>

#include "../cpu/adamw_cpu.h"
#include "../cpu/surgery_cpu.h"
#include "arg_error.h"
#include "typed_arrays.h"

namespace craftgrad {
namespace {

std::string num(double d) { return std::to_string(d); }

struct Flat {
  const char* name;
  F32View view;
};

// A GradSet layout: flat buffers that all hold sum(sizes) elements.
std::vector<int64_t> readLayout(napi_env env, napi_value sizesValue, const std::vector<Flat>& flats) {
  const std::vector<int64_t> sizes = readSizes(env, sizesValue, "sizes");
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  for (const Flat& f : flats)
    if (f.view.length != total)
      throw rangeError(std::string(f.name) + " has " + std::to_string(f.view.length) +
                       " elements but sizes add up to " + std::to_string(total));
  return sizes;
}

bool overlaps(const F32View& x, const F32View& y) {
  if (x.length == 0 || y.length == 0) return false;
  return x.data < y.data + y.length && y.data < x.data + x.length;
}

// Written buffers must not overlap each other or any read buffer (reads may alias reads).
void checkDisjoint(const std::vector<Flat>& written, const std::vector<Flat>& read) {
  for (size_t i = 0; i < written.size(); ++i) {
    for (size_t j = i + 1; j < written.size(); ++j)
      if (overlaps(written[i].view, written[j].view))
        throw rangeError(std::string(written[i].name) + " and " + written[j].name + " overlap in memory");
    for (const Flat& r : read)
      if (overlaps(written[i].view, r.view))
        throw rangeError(std::string(written[i].name) + " and " + r.name + " overlap in memory");
  }
}

}  // namespace

double readRange(napi_env env, napi_value v, const char* name, double lo, bool loInclusive, double hi, bool hiInclusive) {
  const double d = readNumber(env, v, name);
  const bool ok = std::isfinite(d) && (loInclusive ? d >= lo : d > lo) && (hiInclusive ? d <= hi : d < hi);
  if (!ok)
    throw rangeError(std::string(name) + " must be a finite number in " + (loInclusive ? "[" : "(") + num(lo) + ", " +
                     (std::isinf(hi) ? std::string("inf") : num(hi)) + (hiInclusive ? "]" : ")") + ", got " + num(d));
  return d;
}

// lr, beta1, beta2, eps, weightDecay, step, gradScale starting at info[first].
AdamWParams readAdamW(const Napi::CallbackInfo& info, size_t first) {
  napi_env env = info.Env();
  const double inf = INFINITY;
  AdamWParams p;
  p.lr = readRange(env, info[first], "lr", 0, true, inf, false);
  p.beta1 = readRange(env, info[first + 1], "beta1", 0, true, 1, false);
  p.beta2 = readRange(env, info[first + 2], "beta2", 0, true, 1, false);
  p.eps = readRange(env, info[first + 3], "eps", 0, false, inf, false);
  p.weightDecay = readRange(env, info[first + 4], "weightDecay", 0, true, inf, false);
  p.step = readRange(env, info[first + 5], "step", 1, true, 9007199254740991.0, true);
  if (p.step != std::floor(p.step)) throw rangeError("step must be an integer >= 1, got " + num(p.step));
  p.gradScale = readRange(env, info[first + 6], "gradScale", 0, true, inf, false);
  return p;
}

const double* readFloat64(napi_env env, napi_value value, const char* name, int64_t expected) {
  bool isTyped = false;
  NAPI_THROW_IF_FAILED(env, napi_is_typedarray(env, value, &isTyped), nullptr);
  napi_typedarray_type type = napi_int8_array;
  size_t length = 0;
  void* data = nullptr;
  if (isTyped) NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr), nullptr);
  if (!isTyped || type != napi_float64_array) throw typeError(std::string(name) + " must be a Float64Array");
  if (static_cast<int64_t>(length) != expected)
    throw rangeError(std::string(name) + " has " + std::to_string(length) + " entries but there are " +
                     std::to_string(expected) + " tensors");
  const double* d = static_cast<const double*>(data);
  for (int64_t i = 0; i < expected; ++i)
    if (!std::isfinite(d[i])) throw rangeError(std::string(name) + "[" + std::to_string(i) + "] must be finite, got " + num(d[i]));
  return d;
}

Napi::Object craftReduceResult(Napi::Env env, const std::vector<ReduceSums>& sums, const SurgeryParams& sp) {
  const size_t k = sums.size();
  Napi::Uint8Array conflicts = Napi::Uint8Array::New(env, k);
  Napi::Float64Array dots = Napi::Float64Array::New(env, k);
  Napi::Float64Array coefficients = Napi::Float64Array::New(env, k);
  uint32_t numConflicts = 0, nonFinite = 0;
  double normSq = 0.0;  // in tensor order: deterministic
  for (size_t i = 0; i < k; ++i) {
    bool conflict;
    const double c = surgeryCoefficient(sums[i], sp, &conflict);
    conflicts[i] = conflict ? 1 : 0;
    dots[i] = sums[i].dot;
    coefficients[i] = c;
    numConflicts += conflict ? 1 : 0;
    nonFinite += sums[i].nonFinite ? 1 : 0;
    normSq += outSquaredNorm(sums[i], c);
  }
  Napi::Object res = Napi::Object::New(env);
  res.Set("conflicts", conflicts);
  res.Set("dots", dots);
  res.Set("coefficients", coefficients);
  res.Set("numConflicts", Napi::Number::New(env, numConflicts));
  res.Set("numTensors", Napi::Number::New(env, static_cast<double>(k)));
  res.Set("conflictRatio", Napi::Number::New(env, k ? static_cast<double>(numConflicts) / k : 0.0));
  res.Set("gradNorm", Napi::Number::New(env, std::sqrt(normSq)));
  res.Set("nonFinite", Napi::Number::New(env, nonFinite));
  return res;
}

SurgeryParams readReduceParams(const Napi::CallbackInfo& info, size_t first) {
  napi_env env = info.Env();
  SurgeryParams sp;
  sp.lambda = readRange(env, info[first], "lambda", 0, true, INFINITY, false);
  sp.eps = readRange(env, info[first + 1], "eps", 0, false, INFINITY, false);
  sp.projection = readBool(env, info[first + 2], "projection");
  return sp;
}

namespace {

// craftReduce(actFlat, retFlat, sizes, lambda, eps, projection): surgery pass 1 only.
// retFlat may be actFlat itself (the baseline's gradient norm: aa with c = 0).
Napi::Value CraftReduce(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const F32View a = readFloat32Array(env, info[0], "actFlat");
    const F32View r = readFloat32Array(env, info[1], "retFlat");
    const std::vector<int64_t> sizes = readLayout(env, info[2], {{"actFlat", a}, {"retFlat", r}});
    const SurgeryParams sp = readReduceParams(info, 3);

    const size_t k = sizes.size();
    std::vector<HostTensor> tensors(k);
    int64_t off = 0;
    for (size_t i = 0; i < k; ++i) {
      tensors[i] = {a.data + off, r.data + off, nullptr, sizes[i]};
      off += sizes[i];
    }
    std::vector<ReduceSums> sums(k);
    reduceAllCpu(tensors.data(), static_cast<int64_t>(k), sums.data());

    return craftReduceResult(env, sums, sp);
  });
}

// adamwFused(actFlat, retFlat, sizes, coefficients, params, m, v, lr, beta1, beta2, eps,
//            weightDecay, step, gradScale)
Napi::Value AdamWFused(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const F32View a = readFloat32Array(env, info[0], "actFlat");
    const F32View r = readFloat32Array(env, info[1], "retFlat");
    const F32View p = readFloat32Array(env, info[4], "params");
    const F32View m = readFloat32Array(env, info[5], "m");
    const F32View v = readFloat32Array(env, info[6], "v");
    const std::vector<int64_t> sizes =
        readLayout(env, info[2], {{"actFlat", a}, {"retFlat", r}, {"params", p}, {"m", m}, {"v", v}});
    const int64_t k = static_cast<int64_t>(sizes.size());
    const double* coef = readFloat64(env, info[3], "coefficients", k);
    const AdamWParams hp = readAdamW(info, 7);
    checkDisjoint({{"params", p}, {"m", m}, {"v", v}}, {{"actFlat", a}, {"retFlat", r}});

    std::vector<FusedTensor> tensors(k);
    int64_t off = 0;
    for (int64_t i = 0; i < k; ++i) {
      tensors[i] = {a.data + off, r.data + off, p.data + off, m.data + off, v.data + off, sizes[i],
                    static_cast<float>(coef[i])};
      off += sizes[i];
    }
    adamwFusedCpu(tensors.data(), k, hp);
    return env.Undefined();
  });
}

// adamw(grad, params, m, v, lr, beta1, beta2, eps, weightDecay, step, gradScale)
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const F32View g = readFloat32Array(env, info[0], "grad");
    const F32View p = readFloat32Array(env, info[1], "params");
    const F32View m = readFloat32Array(env, info[2], "m");
    const F32View v = readFloat32Array(env, info[3], "v");
    for (const Flat& f : std::vector<Flat>{{"params", p}, {"m", m}, {"v", v}})
      if (f.view.length != g.length)
        throw rangeError(std::string(f.name) + " has " + std::to_string(f.view.length) + " elements but grad has " +
                         std::to_string(g.length));
    const AdamWParams hp = readAdamW(info, 4);
    checkDisjoint({{"params", p}, {"m", m}, {"v", v}}, {{"grad", g}});
    adamwCpu(g.data, p.data, m.data, v.data, g.length, hp);
    return env.Undefined();
  });
}

}  // namespace

void registerAdamW(Napi::Env env, Napi::Object exports) {
  exports.Set("craftReduce", Napi::Function::New(env, CraftReduce, "craftReduce"));
  exports.Set("adamwFused", Napi::Function::New(env, AdamWFused, "adamwFused"));
  exports.Set("adamw", Napi::Function::New(env, AdamW, "adamw"));
}

}  // namespace craftgrad
