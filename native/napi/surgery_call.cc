#include "surgery_call.h"

#include <cmath>
#include <string>

#include "arg_error.h"
#include "backends.h"
#include "env_data.h"
#include "js_values.h"
#include "operands.h"
#include "options.h"
#include "tensor_set.h"
#include "typed_arrays.h"

namespace craftgrad {
namespace {

std::string num(int64_t v) { return std::to_string(v); }

// The surgery's words (tests pin them): its overlap message names the pair in address
// order and says what aliasing is allowed.
const Wording kSurgeryWords{
    "{x} is on {xv} but {y} is on {yv}",
    "{x} does not have {y}'s tensor sizes",
    "{x} and {y} overlap in memory; an output may only alias its own tensor's act or ret exactly",
    true,
};

// Where host operands are computed: options.device, the CPU by default.
Backend* hostBackend(Napi::Env env, const Options& o) {
  const napi_value device = o.optional("device");
  return device ? &readBackend(env, Napi::Value(env, device), "device") : &defaultHostBackend();
}

void parseSets(const Napi::CallbackInfo& info, SurgeryOp& op) {
  Napi::Env env = info.Env();
  Operands ops(env, &op.hold, kSurgeryWords);
  TensorSetWrap* a = ops.set(info[0], "act", Access::Read);
  TensorSetWrap* r = ops.set(info[1], "ret", Access::Read);
  const Options o(env, info[2], "options");
  op.params = readSurgeryParams(o);
  op.cosines = o.boolean("cosines");
  const napi_value outValue = o.optional("out");
  TensorSetWrap* out = outValue ? ops.set(outValue, "out", Access::WriteInPlace) : nullptr;
  ops.requireSetsLike(a);
  op.backend = &a->backend();
  op.layout = a->layout();
  op.a = a->data();
  op.r = r->data();
  if (out) {
    ops.requireDisjoint();
    op.out = out->data();
    op.outIndex = op.hold.keep(outValue);
  } else {
    Napi::Object fresh = TensorSetWrap::create(env, *op.backend, op.layout);
    TensorSetWrap* w = TensorSetWrap::Unwrap(fresh);
    op.hold.memory.push_back(w->memory());
    op.out = w->data();
    op.outIndex = op.hold.keep(fresh);
  }
}

void parseList(const Napi::CallbackInfo& info, SurgeryOp& op) {
  Napi::Env env = info.Env();
  Operands ops(env, &op.hold, kSurgeryWords);
  F32List act, ret;
  ops.list(info[0], "act", Access::Read, act);
  ops.list(info[1], "ret", Access::Read, ret);
  ops.requireListLike(ret, "ret", act, "act");
  const size_t k = act.size();
  const Options o(env, info[2], "options");
  op.params = readSurgeryParams(o);
  op.cosines = o.boolean("cosines");

  op.tensors.resize(k);
  int64_t total = 0;
  for (size_t i = 0; i < k; ++i) {
    op.tensors[i] = {act[i].data, ret[i].data, nullptr, act[i].length};
    total += act[i].length;
  }
  if (const napi_value outValue = o.optional("out")) {
    F32List out;
    ops.list(outValue, "out", Access::WriteInPlace, out);
    ops.requireListLike(out, "out", act, "act");
    for (size_t i = 0; i < k; ++i) op.tensors[i].out = out[i].data;
    ops.requireDisjoint();
    op.outIndex = op.hold.keep(outValue);
  } else {
    // One ArrayBuffer for all outputs: one allocation however many tensors there are.
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, static_cast<size_t>(total) * sizeof(float));
    float* base = static_cast<float*>(buffer.Data());
    Napi::Array list = Napi::Array::New(env, k);
    int64_t offset = 0;
    for (size_t i = 0; i < k; ++i) {
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
  Operands ops(env, &op.hold, kSurgeryWords);
  const F32View a = ops.array(info[0], "actFlat", Access::Read);
  const F32View r = ops.array(info[1], "retFlat", Access::Read);
  ops.requireSameLength(r, "retFlat", a, "actFlat");
  const Options o(env, info[2], "options");
  const std::vector<int64_t> sizes = readSizes(env, o.get("sizes"), "sizes");
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  if (total != a.length) throw rangeError("sizes add up to " + num(total) + " elements but actFlat has " + num(a.length));
  op.params = readSurgeryParams(o);
  op.cosines = o.boolean("cosines");

  float* outData;
  if (const napi_value outValue = o.optional("out")) {
    const F32View out = ops.array(outValue, "out", Access::WriteInPlace);
    ops.requireSameLength(out, "out", a, "actFlat");
    ops.requireDisjoint();
    outData = out.data;
    op.outIndex = op.hold.keep(outValue);
  } else {
    Napi::Float32Array fresh = Napi::Float32Array::New(env, static_cast<size_t>(total));
    outData = fresh.Data();
    op.outIndex = op.hold.keep(fresh);
  }
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
    backend->surgery(*layout, a, r, out, params, stats.data());
  } else {
    stats.resize(tensors.size());
    backend->surgeryHost(tensors.data(), static_cast<int64_t>(tensors.size()), params, stats.data());
  }
}

// Built by EnvData's result function (env_data.h): the per-tensor values go through its
// scratch arrays, the rest as arguments.
Napi::Value SurgeryOp::result(Napi::Env env) {
  const size_t k = stats.size();
  EnvData& data = envData(env);
  napi_value args[8];
  data.scratch(k, cosines ? 2 * k : k, &args[1], &args[2]);
  uint8_t* conflicts = data.byteData;
  double* dots = data.doubleData;
  uint32_t numConflicts = 0, nonFinite = 0;
  double normSq = 0.0;  // summed in tensor order: deterministic
  for (size_t i = 0; i < k; ++i) {
    conflicts[i] = stats[i].conflict ? 1 : 0;
    dots[i] = stats[i].dot;
    numConflicts += stats[i].conflict ? 1 : 0;
    nonFinite += stats[i].nonFinite ? 1 : 0;
    normSq += stats[i].outSq;
  }
  if (cosines) {
    for (size_t i = 0; i < k; ++i) {
      const double denom = std::sqrt(stats[i].aa) * std::sqrt(stats[i].rr);
      dots[k + i] = denom > 0 ? stats[i].dot / denom : 0.0;
    }
  }
  args[0] = hold.values[outIndex];
  checkStatus(env, napi_create_double(env, static_cast<double>(k), &args[3]));
  checkStatus(env, napi_get_boolean(env, cosines, &args[4]));
  checkStatus(env, napi_create_uint32(env, numConflicts, &args[5]));
  checkStatus(env, napi_create_double(env, std::sqrt(normSq), &args[6]));
  checkStatus(env, napi_create_uint32(env, nonFinite, &args[7]));
  napi_value fn, undefined, res;
  checkStatus(env, napi_get_reference_value(env, data.surgeryResult, &fn));
  checkStatus(env, napi_get_undefined(env, &undefined));
  checkStatus(env, napi_call_function(env, undefined, fn, 8, args, &res));
  return Napi::Value(env, res);
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
