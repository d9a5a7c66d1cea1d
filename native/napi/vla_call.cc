#include "vla_call.h"

#include <string>
#include <vector>

#include "../core/backend.h"
#include "../core/vla_desc.h"
#include "../models/models.h"
#include "arg_error.h"
#include "op_call.h"
#include "operands.h"
#include "options.h"
#include "step_call.h"
#include "tensor_set.h"
#include "typed_arrays.h"

namespace craftgrad {
namespace {

std::string str(int64_t v) { return std::to_string(v); }

VitConfig readTower(Napi::Env env, napi_value value, int k) {
  const std::string name = "config.towers[" + std::to_string(k) + "]";
  const Options o(env, value, name.c_str());
  VitConfig t;
  readConfigSizes(o, {{"embedDim", &t.D}, {"depth", &t.depth}, {"numHeads", &t.heads}, {"mlpHidden", &t.mlp},
                      {"patchSize", &t.patch}, {"imageSize", &t.image}, {"classToken", &t.cls}, {"regTokens", &t.reg}});
  t.layerScale = o.boolean("layerScale");
  t.eps = o.number("layerNormEps");
  return t;
}

VlaConfig readVlaConfig(Napi::Env env, napi_value value) {
  const Options o(env, value, "config");
  VlaConfig c;
  const Napi::Value towers(env, o.get("towers"));
  if (!towers.IsArray() || towers.As<Napi::Array>().Length() != 2)
    throw typeError("config.towers must be an Array of the two towers' configs (featurizer, fused_featurizer)");
  for (uint32_t k = 0; k < 2; ++k) c.tower[k] = readTower(env, towers.As<Napi::Array>().Get(k), static_cast<int>(k));
  readConfigSizes(o, {{"views", &c.views}, {"projectorHidden", &c.projHidden}, {"hiddenSize", &c.D},
                      {"numLayers", &c.L}, {"numHeads", &c.heads}, {"numKvHeads", &c.kvHeads},
                      {"intermediateSize", &c.I}, {"vocabSize", &c.V}});
  c.eps = o.number("rmsNormEps");
  c.theta = o.number("ropeTheta");
  readConfigSizes(o, {{"inputIds", &c.S}, {"queries", &c.Q}, {"rank", &c.r}});
  c.alpha = o.number("alpha");
  readConfigSizes(o, {{"headBlocks", &c.NB}, {"chunk", &c.chunk}, {"actionDims", &c.A}, {"proprioDim", &c.proprioDim},
                      {"bridgeLayer", &c.m}});
  c.proprio = c.proprioDim > 0;
  c.span = static_cast<BridgeSpan>(o.choice("bridgeSpan", {"vision", "vision+prompt"}));
  readFeatureOptions(o, &c.pool, &c.anchor);
  throwConfigError(vlaConfigError(c));
  return c;
}

// VLA-Adapter's step (step_call.h: ModelStepOp<VlaPolicyCall>).
struct VlaPolicyCall {
  static constexpr const char* kName = "craftgrad.vlaStep";
  using Config = VlaConfig;
  using Args = VlaStepArgs;
  static Config readConfig(Napi::Env env, napi_value v) { return readVlaConfig(env, v); }
  static Backend* readOperands(Napi::Env env, const Options& o, const StepHeader& h, const Config& c, Operands& ops,
                               Args& a) {
    const VlaLayout lay = vlaLayout(c);
    const int64_t B = a.batch;
    const Need trainable{lay.paramCount, "the VLA model's trainable layout"};
    a.params = ops.set(o.get("params"), "params", Access::Read, trainable)->data();
    if (h.retention)
      a.anchor = ops.set(o.get("anchor"), "anchor", Access::Read, Need{lay.anchorCount, "the VLA model's anchor layout"})->data();
    readGradientSets(o, ops, h, trainable, &a.gAct, &a.gRet);
    Backend* backend = ops.backend();

    // The frozen groups: one TensorSet in the backend's memory, or (host backends) an Array
    // of Float32Array, each of its group's length.
    const std::vector<TensorDesc> groups = vlaFrozenGroups(c);
    const Napi::Value frozenValue(env, o.get("frozen"));
    if (TensorSetWrap::is(env, frozenValue)) {
      TensorSetWrap* w = ops.anySet(frozenValue, "frozen");  // fp32, or bf16 (precision 'bf16' only: step_call.h)
      ops.requireBackend(w, "frozen");
      std::vector<int64_t> want;
      for (const TensorDesc& g : groups) want.push_back(g.size());
      if (w->layout()->sizes() != want)
        throw rangeError("frozen has " + str(w->layout()->count()) + " tensors but the model needs " +
                         str(static_cast<int64_t>(groups.size())) + " groups (vlaTensors(config).frozen)");
      int64_t at = 0;
      for (const TensorDesc& g : groups) {
        // bf16: 2-byte elements, the same offsets in elements of a uint16_t base.
        if (w->bf16()) a.frozen16.push_back(reinterpret_cast<const uint16_t*>(w->data()) + at);
        else a.frozen.push_back(w->data() + at);
        at += g.size();
      }
      a.frozenBf16 = w->bf16();
      a.frozenInBackend = true;
    } else {
      if (!backend->hostMemory())
        throw typeError("frozen must be a TensorSet on " + backend->name() +
                        " (the frozen weights uploaded once to the device), got host arrays");
      if (!frozenValue.IsArray()) throw typeError("frozen must be an Array of Float32Array, one per group of vlaTensors(config).frozen");
      const Napi::Array list = frozenValue.As<Napi::Array>();
      if (list.Length() != groups.size())
        throw rangeError("frozen has " + str(list.Length()) + " entries but the model has " +
                         str(static_cast<int64_t>(groups.size())) + " frozen groups");
      for (size_t i = 0; i < groups.size(); ++i)
        a.frozen.push_back(ops.array(list.Get(static_cast<uint32_t>(i)), "frozen", Access::Read,
                                     Need{groups[i].size(), groups[i].name.c_str()}, static_cast<int64_t>(i))
                               .data);
    }
    const int64_t H = c.tower[0].image;
    a.pixels = ops.array(o.get("pixels"), "pixels", Access::Read, Need{B * c.views * 6 * H * H, "batch×views×6×imageSize²"}).data;
    const I32View ids = ops.int32Array(o.get("inputIds"), "inputIds", Access::Read, Need{B * c.S, "batch×inputIds"});
    for (int64_t i = 0; i < ids.length; ++i)
      if (ids.data[i] < 0 || ids.data[i] >= c.V)
        throw rangeError("inputIds[" + str(i) + "] is " + str(ids.data[i]) + ", outside the vocabulary [0, " + str(c.V) + ")");
    a.inputIds = ids.data;
    if (c.proprio)
      a.proprio = ops.array(o.get("proprio"), "proprio", Access::Read, Need{B * c.proprioDim, "batch×proprioDim"}).data;
    a.actions = ops.array(o.get("actions"), "actions", Access::Read, Need{B * c.chunk * c.A, "batch×chunk×actionDims"}).data;
    if (o.has("noise"))
      a.noise = ops.array(o.get("noise"), "noise", Access::Read, Need{c.chunk * c.headIn(), "chunk×actionDims×hiddenSize"}).data;
    return backend;
  }
  static ModelStepResult step(Layers& L, const Config& c, const Args& a) { return vlaPolicyStep(L, c, a); }
};

Napi::Array descList(Napi::Env env, const std::vector<TensorDesc>& t) {
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
  return list;
}

Napi::Value VlaTensorsOf(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const VlaConfig c = readVlaConfig(env, info[0]);
    const std::vector<TensorDesc> t = vlaTrainable(c);
    size_t anchor = 0;
    for (; anchor < t.size() && t[anchor].name != "action_queries.weight"; ++anchor) {}
    Napi::Object out = Napi::Object::New(env);
    out.Set("trainable", descList(env, t));
    out.Set("anchorTensors", Napi::Number::New(env, static_cast<double>(anchor + 1)));
    out.Set("frozen", descList(env, vlaFrozenGroups(c)));
    return out;
  });
}

}  // namespace

void registerVlaExports(Napi::Env env, Napi::Object exports) {
  exports.Set("vlaStep", Napi::Function::New(env, callSync<ModelStepOp<VlaPolicyCall>>, "vlaStep"));
  exports.Set("vlaStepAsync", Napi::Function::New(env, callAsync<ModelStepOp<VlaPolicyCall>>, "vlaStepAsync"));
  exports.Set("vlaTensors", Napi::Function::New(env, VlaTensorsOf, "vlaTensors"));
}

}  // namespace craftgrad
