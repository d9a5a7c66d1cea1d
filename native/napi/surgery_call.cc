#include "surgery_call.h"

#include <cmath>
#include <string>

#include "../core/overlap.h"
#include "../cpu/surgery_cpu.h"
#include "arg_error.h"
#include "typed_arrays.h"
#ifdef CRAFTGRAD_HAVE_CUDA
#include "../cuda/cuda_backend.h"
#endif

namespace craftgrad {
namespace {

std::string indexed(const char* name, int64_t i) { return std::string(name) + "[" + std::to_string(i) + "]"; }

SurgeryParams readParams(const Napi::CallbackInfo& info, size_t first, bool* cosines) {
  napi_env env = info.Env();
  SurgeryParams p;
  p.lambda = readNumber(env, info[first], "lambda");
  if (!std::isfinite(p.lambda) || p.lambda < 0)
    throw rangeError("lambda must be a finite number >= 0, got " + std::to_string(p.lambda));
  p.eps = readNumber(env, info[first + 1], "eps");
  if (!std::isfinite(p.eps) || p.eps <= 0)
    throw rangeError("eps must be a finite number > 0, got " + std::to_string(p.eps));
  p.projection = readBool(env, info[first + 2], "projection");
  *cosines = readBool(env, info[first + 3], "cosines");
  return p;
}

void addRange(std::vector<MemRange>& ranges, const float* p, int64_t n, int64_t index, Role role) {
  if (n == 0) return;
  const auto begin = reinterpret_cast<uintptr_t>(p);
  ranges.push_back({begin, begin + static_cast<uintptr_t>(n) * sizeof(float), index, role});
}

std::string rangeLabel(const MemRange& m, bool flat) {
  if (flat) return m.role == Role::Out ? "out" : (m.role == Role::Act ? "actFlat" : "retFlat");
  return indexed(roleName(m.role), m.index);
}

void checkOverlap(std::vector<MemRange>& ranges, bool flat) {
  const OverlapIssue issue = findForbiddenOverlap(ranges);
  if (issue.found)
    throw rangeError(rangeLabel(issue.first, flat) + " and " + rangeLabel(issue.second, flat) +
                     " overlap in memory; an output may only alias its own tensor's act or ret exactly");
}

// One ArrayBuffer for all outputs: one allocation however many tensors there are.
napi_value allocateBuffer(Napi::Env env, int64_t totalElements) {
  return Napi::ArrayBuffer::New(env, static_cast<size_t>(totalElements) * sizeof(float));
}

}  // namespace

SurgeryParams readSurgeryParams(const Napi::CallbackInfo& info, size_t first, bool* cosines) {
  return readParams(info, first, cosines);
}

SurgeryCall SurgeryCall::parseList(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SurgeryCall call;
  const std::vector<F32View> act = readFloat32List(env, info[0], "act");
  const std::vector<F32View> ret = readFloat32List(env, info[1], "ret");
  if (act.size() != ret.size())
    throw rangeError("ret has " + std::to_string(ret.size()) + " tensors but act has " + std::to_string(act.size()));
  const int64_t k = static_cast<int64_t>(act.size());
  for (int64_t i = 0; i < k; ++i)
    if (act[i].length != ret[i].length)
      throw rangeError(indexed("ret", i) + " has " + std::to_string(ret[i].length) + " elements but " +
                       indexed("act", i) + " has " + std::to_string(act[i].length));
  call.params = readParams(info, 3, &call.cosines);

  call.tensors.resize(k);
  int64_t total = 0;
  for (int64_t i = 0; i < k; ++i) {
    call.tensors[i] = {act[i].data, ret[i].data, nullptr, act[i].length};
    total += act[i].length;
    call.keepAlive.push_back(act[i].arrayBuffer);
    call.keepAlive.push_back(ret[i].arrayBuffer);
  }

  if (!isNullish(env, info[2])) {
    const std::vector<F32View> out = readFloat32List(env, info[2], "out");
    if (static_cast<int64_t>(out.size()) != k)
      throw rangeError("out has " + std::to_string(out.size()) + " tensors but act has " + std::to_string(k));
    std::vector<MemRange> ranges;
    ranges.reserve(3 * k);
    for (int64_t i = 0; i < k; ++i) {
      if (out[i].length != act[i].length)
        throw rangeError(indexed("out", i) + " has " + std::to_string(out[i].length) + " elements but " +
                         indexed("act", i) + " has " + std::to_string(act[i].length));
      call.tensors[i].out = out[i].data;
      call.keepAlive.push_back(out[i].arrayBuffer);
    }
    for (int64_t i = 0; i < k; ++i) addRange(ranges, act[i].data, act[i].length, i, Role::Act);
    for (int64_t i = 0; i < k; ++i) addRange(ranges, ret[i].data, ret[i].length, i, Role::Ret);
    for (int64_t i = 0; i < k; ++i) addRange(ranges, out[i].data, out[i].length, i, Role::Out);
    checkOverlap(ranges, false);
    call.out = info[2];
  } else {
    napi_value buffer = allocateBuffer(env, total);
    Napi::ArrayBuffer ab(env, buffer);
    float* base = static_cast<float*>(ab.Data());
    Napi::Array list = Napi::Array::New(env, k);
    int64_t offset = 0;
    for (int64_t i = 0; i < k; ++i) {
      napi_value view;
      NAPI_THROW_IF_FAILED(env, napi_create_typedarray(env, napi_float32_array, call.tensors[i].n, buffer,
                                                       offset * sizeof(float), &view), SurgeryCall());
      list.Set(static_cast<uint32_t>(i), view);
      call.tensors[i].out = base + offset;
      offset += call.tensors[i].n;
    }
    call.out = list;
  }
  return call;
}

SurgeryCall SurgeryCall::parseFlat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SurgeryCall call;
  call.flat = true;
  const F32View a = readFloat32Array(env, info[0], "actFlat");
  const F32View r = readFloat32Array(env, info[1], "retFlat");
  if (a.length != r.length)
    throw rangeError("retFlat has " + std::to_string(r.length) + " elements but actFlat has " + std::to_string(a.length));
  const std::vector<int64_t> sizes = readSizes(env, info[2], "sizes");
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  if (total != a.length)
    throw rangeError("sizes add up to " + std::to_string(total) + " elements but actFlat has " + std::to_string(a.length));
  call.params = readParams(info, 4, &call.cosines);

  float* outData;
  if (!isNullish(env, info[3])) {
    const F32View o = readFloat32Array(env, info[3], "out");
    if (o.length != a.length)
      throw rangeError("out has " + std::to_string(o.length) + " elements but actFlat has " + std::to_string(a.length));
    std::vector<MemRange> ranges;
    addRange(ranges, a.data, a.length, 0, Role::Act);
    addRange(ranges, r.data, r.length, 0, Role::Ret);
    addRange(ranges, o.data, o.length, 0, Role::Out);
    checkOverlap(ranges, true);
    outData = o.data;
    call.out = info[3];
    call.keepAlive.push_back(o.arrayBuffer);
  } else {
    Napi::Float32Array fresh = Napi::Float32Array::New(env, static_cast<size_t>(total));
    outData = fresh.Data();
    call.out = fresh;
  }
  call.keepAlive.push_back(a.arrayBuffer);
  call.keepAlive.push_back(r.arrayBuffer);
  call.tensors.resize(sizes.size());
  int64_t offset = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    call.tensors[i] = {a.data + offset, r.data + offset, outData + offset, sizes[i]};
    offset += sizes[i];
  }
  return call;
}

void SurgeryCall::compute() {
  stats.resize(tensors.size());
#ifdef CRAFTGRAD_HAVE_CUDA
  if (cudaDevice >= 0) {
    cuda::surgeryHost(cudaDevice, tensors.data(), static_cast<int64_t>(tensors.size()), params, stats.data());
    return;
  }
#endif
  surgeryCpu(tensors.data(), static_cast<int64_t>(tensors.size()), params, stats.data());
}

Napi::Object SurgeryCall::result(Napi::Env env) const {
  const size_t k = stats.size();
  Napi::Uint8Array conflicts = Napi::Uint8Array::New(env, k);
  Napi::Float64Array dots = Napi::Float64Array::New(env, k);
  uint32_t numConflicts = 0, nonFinite = 0;
  double normSq = 0.0;  // summed in tensor order: deterministic
  for (size_t i = 0; i < k; ++i) {
    conflicts[i] = stats[i].conflict ? 1 : 0;
    dots[i] = stats[i].dot;
    numConflicts += stats[i].conflict ? 1 : 0;
    nonFinite += stats[i].nonFinite ? 1 : 0;
    normSq += stats[i].outSq;
  }
  Napi::Object r = Napi::Object::New(env);
  r.Set("out", Napi::Value(env, out));
  r.Set("conflicts", conflicts);
  r.Set("dots", dots);
  if (cosines) {
    Napi::Float64Array cos = Napi::Float64Array::New(env, k);
    for (size_t i = 0; i < k; ++i) {
      const double denom = std::sqrt(stats[i].aa) * std::sqrt(stats[i].rr);
      cos[i] = denom > 0 ? stats[i].dot / denom : 0.0;
    }
    r.Set("cosines", cos);
  }
  r.Set("numConflicts", Napi::Number::New(env, numConflicts));
  r.Set("numTensors", Napi::Number::New(env, static_cast<double>(k)));
  r.Set("conflictRatio", Napi::Number::New(env, k ? static_cast<double>(numConflicts) / k : 0.0));
  r.Set("gradNorm", Napi::Number::New(env, std::sqrt(normSq)));
  r.Set("nonFinite", Napi::Number::New(env, nonFinite));
  return r;
}

}  // namespace craftgrad
