#include "qwen2_call.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../core/backend.h"
#include "../core/qwen2_desc.h"
#include "../models/models.h"
#include "arg_error.h"
#include "op_call.h"
#include "step_call.h"
#include "operands.h"
#include "options.h"
#include "tensor_set.h"
#include "typed_arrays.h"

namespace craftgrad {
namespace {

std::string str(int64_t v) { return std::to_string(v); }

Qwen2Config readQwen2Config(Napi::Env env, napi_value value) {
  const Options o(env, value, "config");
  Qwen2Config c;
  readConfigSizes(o, {{"hiddenSize", &c.D}, {"numLayers", &c.L}, {"numHeads", &c.heads}, {"numKvHeads", &c.kvHeads},
                      {"intermediateSize", &c.I}, {"vocabSize", &c.V}});
  c.eps = o.number("rmsNormEps");
  c.theta = o.number("ropeTheta");
  readConfigSizes(o, {{"prefixTokens", &c.P}, {"promptTokens", &c.S}, {"queries", &c.Q}, {"rank", &c.r}});
  c.alpha = o.number("alpha");
  readConfigSizes(o, {{"actionDims", &c.A}, {"headWidth", &c.Hh}, {"bridgeLayer", &c.m}});
  c.span = static_cast<BridgeSpan>(o.choice("bridgeSpan", {"prefix", "prefix+prompt"}));
  readFeatureOptions(o, &c.pool, &c.anchor);
  const Napi::Value t(env, o.get("targets"));
  if (!t.IsArray()) throw typeError("config.targets must be an Array of linear layer names");
  const Napi::Array list = t.As<Napi::Array>();
  for (uint32_t i = 0; i < list.Length(); ++i) {
    const Napi::Value v = list.Get(i);
    int found = -1;
    if (v.IsString())
      for (int k = 0; k < kQwen2Linears; ++k)
        if (v.As<Napi::String>().Utf8Value() == qwen2LinearName(k)) found = k;
    if (found < 0) throw rangeError("config.targets[" + std::to_string(i) + "] must be one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj");
    c.targets |= 1u << found;
  }
  throwConfigError(qwen2ConfigError(c));
  return c;
}

// The Qwen2 policy's step (step_call.h: ModelStepOp<Qwen2PolicyCall>).
struct Qwen2PolicyCall {
  static constexpr const char* kName = "craftgrad.qwen2Step";
  using Config = Qwen2Config;
  using Args = Qwen2StepArgs;
  static Config readConfig(Napi::Env env, napi_value v) { return readQwen2Config(env, v); }
  static Backend* readOperands(Napi::Env env, const Options& o, const StepHeader& h, const Config& c, Operands& ops,
                               Args& a) {
    const Qwen2Layout lay = qwen2Layout(c);
    const int64_t B = a.batch;

    // The sets, each of the length its layout needs, all on params' device; the rest host
    // arrays (or, for the frozen weights, one set). Written operands overlap nothing: they
    // are written while the inputs are still read.
    const Need trainable{lay.paramCount, "the policy's trainable layout"};
    a.params = ops.set(o.get("params"), "params", Access::Read, trainable)->data();
    if (h.retention) a.anchor = ops.set(o.get("anchor"), "anchor", Access::Read, Need{lay.anchorCount, "the policy's anchor layout"})->data();
    readGradientSets(o, ops, h, trainable, &a.gAct, &a.gRet);
    Backend* backend = ops.backend();

    // The frozen weights: host arrays (a backend whose memory is host memory), or one set
    // in the backend's memory holding [embedTokens (V·D), each layer, finalNorm (D)], as
    // Qwen2Policy uploads them once to a device.
    const int64_t layerFloats = qwen2LayerOffsets(c).floats;
    const Napi::Value frozenValue(env, o.get("frozen"));
    if (TensorSetWrap::is(env, frozenValue)) {
      TensorSetWrap* w = ops.anySet(frozenValue, "frozen");  // fp32, or bf16 (precision 'bf16' only: step_call.h)
      ops.requireBackend(w, "frozen");
      std::vector<int64_t> want{c.V * c.D};
      for (int64_t l = 0; l < c.L; ++l) want.push_back(layerFloats);
      want.push_back(c.D);
      if (w->layout()->sizes() != want)
        throw rangeError("frozen has " + str(w->layout()->count()) + " tensors of " + str(w->length()) +
                         " elements but the model needs " + str(c.L + 2) + " (embedTokens " + str(c.V * c.D) + ", " +
                         str(c.L) + " layers of " + str(layerFloats) + ", finalNorm " + str(c.D) + ")");
      a.frozenInBackend = true;
      if (w->bf16()) {
        // 2-byte elements: the same offsets, in elements of a uint16_t base.
        const auto* base = reinterpret_cast<const uint16_t*>(w->data());
        a.frozenBf16 = true;
        a.embed16 = base;
        for (int64_t l = 0; l < c.L; ++l) a.layers16.push_back(base + c.V * c.D + l * layerFloats);
        a.finalNorm16 = base + c.V * c.D + c.L * layerFloats;
      } else {
        const float* base = w->data();
        a.embed = base;
        for (int64_t l = 0; l < c.L; ++l) a.layers.push_back(base + c.V * c.D + l * layerFloats);
        a.finalNorm = base + c.V * c.D + c.L * layerFloats;
      }
    } else {
      if (!backend->hostMemory())
        throw typeError("frozen must be a TensorSet on " + backend->name() +
                        " (the frozen weights uploaded once to the device, as Qwen2Policy does), got host arrays");
      const Options fr(env, o.get("frozen"), "frozen");
      a.embed = ops.array(fr.get("embedTokens"), "frozen.embedTokens", Access::Read, Need{c.V * c.D, "vocabSize×hiddenSize"}).data;
      a.finalNorm = ops.array(fr.get("finalNorm"), "frozen.finalNorm", Access::Read, Need{c.D, "hiddenSize"}).data;
      const Napi::Value lv(env, fr.get("layers"));
      if (!lv.IsArray()) throw typeError("frozen.layers must be an Array of Float32Array, one per layer");
      const Napi::Array layers = lv.As<Napi::Array>();
      if (layers.Length() != static_cast<uint32_t>(c.L))
        throw rangeError("frozen.layers has " + str(layers.Length()) + " entries but numLayers is " + str(c.L));
      for (int64_t l = 0; l < c.L; ++l) {
        const Need layer{layerFloats, "one decoder layer"};
        a.layers.push_back(ops.array(layers.Get(static_cast<uint32_t>(l)), "frozen.layers", Access::Read, layer, l).data);
      }
    }
    if (c.P > 0) a.prefix = ops.array(o.get("prefix"), "prefix", Access::Read, Need{B * c.P * c.D, "batch×prefixTokens×hiddenSize"}).data;
    else if (o.has("prefix") && readFloat32Array(env, o.get("prefix"), "prefix").length != 0)
      throw rangeError("prefix must be empty: config.prefixTokens is 0");
    if (c.S > 0) {
      const I32View ids = ops.int32Array(o.get("inputIds"), "inputIds", Access::Read, Need{B * c.S, "batch×promptTokens"});
      for (int64_t i = 0; i < ids.length; ++i)
        if (ids.data[i] < 0 || ids.data[i] >= c.V)
          throw rangeError("inputIds[" + str(i) + "] is " + str(ids.data[i]) + ", outside the vocabulary [0, " + str(c.V) + ")");
      a.inputIds = ids.data;
    }
    a.actions = ops.array(o.get("actions"), "actions", Access::Read, Need{B * c.Q * c.A, "batch×queries×actionDims"}).data;
    return backend;
  }
  static ModelStepResult step(Layers& L, const Config& c, const Args& a) { return qwen2PolicyStep(L, c, a); }
};

Napi::Value Qwen2TensorsOf(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const Qwen2Config c = readQwen2Config(env, info[0]);
    const std::vector<TensorDesc> t = qwen2Trainable(c);
    Napi::Array list = Napi::Array::New(env, t.size());
    for (size_t i = 0; i < t.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", t[i].name);
      Napi::Array shape = Napi::Array::New(env, t[i].shape.size());
      for (size_t j = 0; j < t[i].shape.size(); ++j)
        shape.Set(static_cast<uint32_t>(j), Napi::Number::New(env, static_cast<double>(t[i].shape[j])));
      o.Set("shape", shape);
      list.Set(static_cast<uint32_t>(i), o);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("trainable", list);
    out.Set("anchorTensors", Napi::Number::New(env, static_cast<double>(t.size() - 4)));  // all but the head's four
    return out;
  });
}

}  // namespace

void registerQwen2Exports(Napi::Env env, Napi::Object exports) {
  exports.Set("qwen2Step", Napi::Function::New(env, callSync<ModelStepOp<Qwen2PolicyCall>>, "qwen2Step"));
  exports.Set("qwen2StepAsync", Napi::Function::New(env, callAsync<ModelStepOp<Qwen2PolicyCall>>, "qwen2StepAsync"));
  exports.Set("qwen2Tensors", Napi::Function::New(env, Qwen2TensorsOf, "qwen2Tensors"));
}

}  // namespace craftgrad
