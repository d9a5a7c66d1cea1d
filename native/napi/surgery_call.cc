#include "surgery_call.h"

#include <cmath>
#include <string>

#include "../core/overlap.h"
#include "arg_error.h"
#include "backends.h"
#include "options.h"
#include "tensor_set.h"
#include "typed_arrays.h"

namespace craftgrad {
namespace {

std::string indexed(const char* name, int64_t i) { return std::string(name) + "[" + std::to_string(i) + "]"; }
std::string num(int64_t v) { return std::to_string(v); }

void addRange(std::vector<MemRange>& ranges, const float* p, int64_t n, int64_t index, Role role) {
  if (n == 0) return;
  const auto begin = reinterpret_cast<uintptr_t>(p);
  ranges.push_back({begin, begin + static_cast<uintptr_t>(n) * sizeof(float), index, role});
}

// Labels: "act[3]" for lists; one name per role for flat arrays and sets.
void checkOverlap(std::vector<MemRange>& ranges, const char* const* flatNames) {
  const OverlapIssue issue = findForbiddenOverlap(ranges);
  if (!issue.found) return;
  auto label = [&](const MemRange& m) {
    return flatNames ? std::string(flatNames[static_cast<int>(m.role)]) : indexed(roleName(m.role), m.index);
  };
  throw rangeError(label(issue.first) + " and " + label(issue.second) +
                   " overlap in memory; an output may only alias its own tensor's act or ret exactly");
}

// Where host operands are computed: options.device, the CPU by default.
Backend* hostBackend(Napi::Env env, const Options& o) {
  const napi_value device = o.optional("device");
  return device ? &readBackend(env, Napi::Value(env, device), "device") : &defaultHostBackend();
}

void parseSets(const Napi::CallbackInfo& info, SurgeryOp& op) {
  Napi::Env env = info.Env();
  TensorSetWrap* a = TensorSetWrap::unwrap(env, info[0], "act");
  TensorSetWrap* r = TensorSetWrap::unwrap(env, info[1], "ret");
  const Options o(env, info[2], "options");
  op.params = readSurgeryParams(o);
  op.cosines = o.boolean("cosines");
  const napi_value outValue = o.optional("out");
  TensorSetWrap* out = outValue ? TensorSetWrap::unwrap(env, Napi::Value(env, outValue), "out") : nullptr;
  for (auto [w, name] : {std::make_pair(r, "ret"), std::make_pair(out, "out")}) {
    if (!w) continue;
    if (&w->backend() != &a->backend())
      throw rangeError(std::string(name) + " is on " + w->backend().name() + " but act is on " + a->backend().name());
    if (w->length() != a->length())
      throw rangeError(std::string(name) + " has " + num(w->length()) + " elements but act has " + num(a->length()));
    if (!w->layout()->sameSizes(*a->layout()))
      throw rangeError(std::string(name) + " does not have act's tensor sizes");
  }
  op.backend = &a->backend();
  op.layout = a->layout();
  op.a = a->memory();
  op.r = r->memory();
  op.hold.buffer(a->hostBuffer());
  op.hold.buffer(r->hostBuffer());
  if (out) {
    std::vector<MemRange> ranges;
    addRange(ranges, a->data(), a->length(), 0, Role::Act);
    addRange(ranges, r->data(), r->length(), 0, Role::Ret);
    addRange(ranges, out->data(), out->length(), 0, Role::Out);
    static const char* const names[] = {"act", "ret", "out"};
    checkOverlap(ranges, names);
    op.out = out->memory();
    op.hold.buffer(out->hostBuffer());
    op.outIndex = op.hold.keep(outValue);
  } else {
    Napi::Object fresh = TensorSetWrap::create(env, *op.backend, op.layout);
    TensorSetWrap* w = TensorSetWrap::Unwrap(fresh);
    op.out = w->memory();
    op.outIndex = op.hold.keep(fresh);
  }
}

void parseList(const Napi::CallbackInfo& info, SurgeryOp& op) {
  Napi::Env env = info.Env();
  const std::vector<F32View> act = readFloat32List(env, info[0], "act");
  const std::vector<F32View> ret = readFloat32List(env, info[1], "ret");
  if (act.size() != ret.size()) throw rangeError("ret has " + num(ret.size()) + " tensors but act has " + num(act.size()));
  const int64_t k = static_cast<int64_t>(act.size());
  for (int64_t i = 0; i < k; ++i)
    if (act[i].length != ret[i].length)
      throw rangeError(indexed("ret", i) + " has " + num(ret[i].length) + " elements but " + indexed("act", i) +
                       " has " + num(act[i].length));
  const Options o(env, info[2], "options");
  op.params = readSurgeryParams(o);
  op.cosines = o.boolean("cosines");

  op.tensors.resize(k);
  int64_t total = 0;
  for (int64_t i = 0; i < k; ++i) {
    op.tensors[i] = {act[i].data, ret[i].data, nullptr, act[i].length};
    total += act[i].length;
    op.hold.buffer(act[i].arrayBuffer);
    op.hold.buffer(ret[i].arrayBuffer);
  }
  if (const napi_value outValue = o.optional("out")) {
    const std::vector<F32View> out = readFloat32List(env, outValue, "out");
    if (static_cast<int64_t>(out.size()) != k) throw rangeError("out has " + num(out.size()) + " tensors but act has " + num(k));
    std::vector<MemRange> ranges;
    ranges.reserve(3 * k);
    for (int64_t i = 0; i < k; ++i) {
      if (out[i].length != act[i].length)
        throw rangeError(indexed("out", i) + " has " + num(out[i].length) + " elements but " + indexed("act", i) +
                         " has " + num(act[i].length));
      op.tensors[i].out = out[i].data;
      op.hold.buffer(out[i].arrayBuffer);
    }
    for (int64_t i = 0; i < k; ++i) addRange(ranges, act[i].data, act[i].length, i, Role::Act);
    for (int64_t i = 0; i < k; ++i) addRange(ranges, ret[i].data, ret[i].length, i, Role::Ret);
    for (int64_t i = 0; i < k; ++i) addRange(ranges, out[i].data, out[i].length, i, Role::Out);
    checkOverlap(ranges, nullptr);
    op.outIndex = op.hold.keep(outValue);
  } else {
    // One ArrayBuffer for all outputs: one allocation however many tensors there are.
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, static_cast<size_t>(total) * sizeof(float));
    float* base = static_cast<float*>(buffer.Data());
    Napi::Array list = Napi::Array::New(env, k);
    int64_t offset = 0;
    for (int64_t i = 0; i < k; ++i) {
      list.Set(static_cast<uint32_t>(i), Napi::Float32Array::New(env, static_cast<size_t>(op.tensors[i].n), buffer,
                                                                 static_cast<size_t>(offset) * sizeof(float)));
      op.tensors[i].out = base + offset;
      offset += op.tensors[i].n;
    }
    op.outIndex = op.hold.keep(list);
  }
  op.backend = hostBackend(env, o);
}

void parseFlat(const Napi::CallbackInfo& info, SurgeryOp& op) {
  Napi::Env env = info.Env();
  const F32View a = readFloat32Array(env, info[0], "actFlat");
  const F32View r = readFloat32Array(env, info[1], "retFlat");
  if (a.length != r.length) throw rangeError("retFlat has " + num(r.length) + " elements but actFlat has " + num(a.length));
  const Options o(env, info[2], "options");
  const std::vector<int64_t> sizes = readSizes(env, o.get("sizes"), "sizes");
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  if (total != a.length) throw rangeError("sizes add up to " + num(total) + " elements but actFlat has " + num(a.length));
  op.params = readSurgeryParams(o);
  op.cosines = o.boolean("cosines");

  float* outData;
  if (const napi_value outValue = o.optional("out")) {
    const F32View out = readFloat32Array(env, outValue, "out");
    if (out.length != a.length) throw rangeError("out has " + num(out.length) + " elements but actFlat has " + num(a.length));
    std::vector<MemRange> ranges;
    addRange(ranges, a.data, a.length, 0, Role::Act);
    addRange(ranges, r.data, r.length, 0, Role::Ret);
    addRange(ranges, out.data, out.length, 0, Role::Out);
    static const char* const names[] = {"actFlat", "retFlat", "out"};
    checkOverlap(ranges, names);
    outData = out.data;
    op.hold.buffer(out.arrayBuffer);
    op.outIndex = op.hold.keep(outValue);
  } else {
    Napi::Float32Array fresh = Napi::Float32Array::New(env, static_cast<size_t>(total));
    outData = fresh.Data();
    op.outIndex = op.hold.keep(fresh);
  }
  op.hold.buffer(a.arrayBuffer);
  op.hold.buffer(r.arrayBuffer);
  op.tensors.resize(sizes.size());
  int64_t offset = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    op.tensors[i] = {a.data + offset, r.data + offset, outData + offset, sizes[i]};
    offset += sizes[i];
  }
  op.backend = hostBackend(env, o);
}

}  // namespace

SurgeryParams readSurgeryParams(const Options& o) {
  SurgeryParams p;
  p.lambda = o.number("lambda");
  if (!std::isfinite(p.lambda) || p.lambda < 0)
    throw rangeError("lambda must be a finite number >= 0, got " + std::to_string(p.lambda));
  p.eps = o.number("eps");
  if (!std::isfinite(p.eps) || p.eps <= 0) throw rangeError("eps must be a finite number > 0, got " + std::to_string(p.eps));
  p.projection = o.boolean("projection");
  return p;
}

SurgeryOp SurgeryOp::parse(const Napi::CallbackInfo& info) {
  SurgeryOp op;
  if (info[0].IsArray()) parseList(info, op);  // the common host form first: cheapest tests
  else if (info[0].IsTypedArray()) parseFlat(info, op);
  else if (TensorSetWrap::is(info.Env(), info[0])) parseSets(info, op);
  else parseList(info, op);  // its TypeError names what act must be
  return op;
}

void SurgeryOp::compute() {
  if (layout) {
    stats.resize(static_cast<size_t>(layout->count()));
    backend->surgery(*layout, a->data(), r->data(), out->data(), params, stats.data());
  } else {
    stats.resize(tensors.size());
    backend->surgeryHost(tensors.data(), static_cast<int64_t>(tensors.size()), params, stats.data());
  }
}

Napi::Value SurgeryOp::result(Napi::Env env) {
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
  Napi::Object res = Napi::Object::New(env);
  res.Set("out", Napi::Value(env, hold.values[outIndex]));
  res.Set("conflicts", conflicts);
  res.Set("dots", dots);
  if (cosines) {
    Napi::Float64Array cos = Napi::Float64Array::New(env, k);
    for (size_t i = 0; i < k; ++i) {
      const double denom = std::sqrt(stats[i].aa) * std::sqrt(stats[i].rr);
      cos[i] = denom > 0 ? stats[i].dot / denom : 0.0;
    }
    res.Set("cosines", cos);
  }
  setSurgeryTotals(env, res, k, numConflicts, normSq, nonFinite);
  return res;
}

void setSurgeryTotals(Napi::Env env, Napi::Object& res, size_t k, uint32_t numConflicts, double normSq,
                      uint32_t nonFinite) {
  res.Set("numConflicts", Napi::Number::New(env, numConflicts));
  res.Set("numTensors", Napi::Number::New(env, static_cast<double>(k)));
  res.Set("conflictRatio", Napi::Number::New(env, k ? static_cast<double>(numConflicts) / k : 0.0));
  res.Set("gradNorm", Napi::Number::New(env, std::sqrt(normSq)));
  res.Set("nonFinite", Napi::Number::New(env, nonFinite));
}

}  // namespace craftgrad
