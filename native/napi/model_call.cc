#include "model_call.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../core/backend.h"
#include "../core/model_desc.h"
#include "../models/models.h"
#include "arg_error.h"
#include "backends.h"
#include "op_call.h"
#include "operands.h"
#include "options.h"
#include "step_call.h"
#include "tensor_set.h"
#include "typed_arrays.h"

namespace craftgrad {
namespace {

std::string str(int64_t v) { return std::to_string(v); }

ModelConfig readConfig(Napi::Env env, napi_value value) {
  const Options o(env, value, "config");
  ModelConfig c;
  readConfigSizes(o, {{"tokens", &c.T}, {"width", &c.D}, {"blocks", &c.L}, {"rank", &c.r}});
  c.alpha = o.number("alpha");
  c.m = o.configSize("bridgeBlock");
  readFeatureOptions(o, &c.pool, &c.anchor);
  readConfigSizes(o, {{"headWidth", &c.H}, {"chunk", &c.K}, {"actionDims", &c.A}});
  throwConfigError(modelConfigError(c));
  return c;
}

// The built-in model's step (step_call.h: ModelStepOp<AdapterPolicyCall>).
struct AdapterPolicyCall {
  static constexpr const char* kName = "craftgrad.modelStep";
  using Config = ModelConfig;
  using Args = ModelStepArgs;
  static Config readConfig(Napi::Env env, napi_value v) { return craftgrad::readConfig(env, v); }
  // The sets, each of the length its layout needs, all on params' device; tokens and
  // actions are host arrays on every backend. Written operands overlap nothing: the
  // kernels read inputs after writing outputs.
  static Backend* readOperands(Napi::Env env, const Options& o, const StepHeader& h, const Config& c, Operands& ops,
                               Args& a) {
    const ModelLayout lay = modelLayout(c);
    const Need trainable{lay.paramCount, "the model's trainable layout"};
    a.params = ops.set(o.get("params"), "params", Access::Read, trainable)->data();
    a.frozen = ops.set(o.get("frozen"), "frozen", Access::Read, Need{lay.frozenCount, "the model's frozen layout"})->data();
    if (h.retention) a.anchor = ops.set(o.get("anchor"), "anchor", Access::Read, Need{lay.anchorCount, "the model's anchor layout"})->data();
    a.tokens = ops.array(o.get("tokens"), "tokens", Access::Read, Need{a.batch * c.T * c.D, "batch×T×D"}).data;
    a.actions = ops.array(o.get("actions"), "actions", Access::Read, Need{a.batch * c.actionDim(), "batch×K×A"}).data;
    readGradientSets(o, ops, h, trainable, &a.gAct, &a.gRet);
    return ops.backend();
  }
  static ModelStepResult step(Layers& L, const Config& c, const Args& a) { return adapterPolicyStep(L, c, a); }
};

// copy({ dst, src, dstOffset = 0, srcOffset = 0, count }): within one device, no overlap.
struct CopyOp {
  static constexpr const char* kName = "craftgrad.copy";
  Backend* backend = nullptr;
  float* dst = nullptr;  // at dstOffset; the memory in hold
  const float* src = nullptr;
  int64_t count = 0;
  JsHold hold;

  static CopyOp parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CopyOp op;
    const Options o(env, info[0], "options");
    // dst may be src's very range (nothing to do), never part of it.
    Operands ops(env, &op.hold, Wording{"{y} is on {yv}, {x} on {xv}", "", "dst and src ranges overlap"});
    TensorSetWrap* d = ops.set(o.get("dst"), "dst", Access::WriteInPlace);
    TensorSetWrap* s = ops.set(o.get("src"), "src", Access::Read);
    const int64_t dstOffset = o.has("dstOffset") ? readCount(env, o.get("dstOffset"), "dstOffset") : 0;
    const int64_t srcOffset = o.has("srcOffset") ? readCount(env, o.get("srcOffset"), "srcOffset") : 0;
    op.count = readCount(env, o.get("count"), "count");
    ops.requireBackend(s, "src");
    if (dstOffset + op.count > d->length())
      throw rangeError("dstOffset + count (" + str(dstOffset + op.count) + ") exceeds dst's " + str(d->length()) + " elements");
    if (srcOffset + op.count > s->length())
      throw rangeError("srcOffset + count (" + str(srcOffset + op.count) + ") exceeds src's " + str(s->length()) + " elements");
    ops.narrow("dst", dstOffset, op.count);
    ops.narrow("src", srcOffset, op.count);
    ops.requireDisjoint();
    op.backend = &d->backend();
    op.dst = d->data() + dstOffset;
    op.src = s->data() + srcOffset;
    return op;
  }
  void compute() {
    if (dst != src) backend->copy(dst, src, count);
  }
  Napi::Value result(Napi::Env env) { return env.Undefined(); }
};

// modelGemm({ M, N, K, alpha, a, transA, b, transB, beta, c, device = 'cpu', variant = 0, precision = 'fp32' }).
struct GemmOp {
  static constexpr const char* kName = "craftgrad.modelGemm";
  Backend* backend = nullptr;
  GemmCall g;
  JsHold hold;

  static GemmOp parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    GemmOp op;
    const Options o(env, info[0], "options");
    // The CUDA kernels' launch grid bounds the dimensions more tightly than the CPU's loops.
    const bool device = o.has("device") && !(o.string("device") == "cpu");
    const int64_t lo = device ? 1 : 0, hi = device ? int64_t{1} << 16 : int64_t{1} << 20;
    GemmCall& g = op.g;
    g.M = o.integer("M", lo, hi);
    g.N = o.integer("N", lo, hi);
    g.K = o.integer("K", lo, hi);
    g.alpha = static_cast<float>(o.number("alpha"));
    g.transA = o.boolean("transA");
    g.transB = o.boolean("transB");
    const double beta = o.number("beta");
    if (beta != 0 && beta != 1) throw rangeError("beta must be 0 or 1");
    g.beta = static_cast<float>(beta);
    Operands ops(env, &op.hold, Wording{"", "", "c overlaps a or b in memory"});
    g.a = ops.array(o.get("a"), "a", Access::Read, Need{g.M * g.K, "M×K"}).data;
    g.b = ops.array(o.get("b"), "b", Access::Read, Need{g.K * g.N, "K×N"}).data;
    g.c = ops.array(o.get("c"), "c", Access::Write, Need{g.M * g.N, "M×N"}).data;
    ops.requireDisjoint();
    g.variant = o.has("variant") ? static_cast<int>(o.integer("variant", 0, 4)) : 0;
    // 'bf16': the inputs rounded to bf16, fp32 accumulation (cuBLASLt on a CUDA device; the
    // hand-written fp32 kernels, with a notice, where cuBLASLt is missing).
    op.backend = o.has("device") ? &readBackend(env, Napi::Value(env, o.get("device")), "device") : &defaultHostBackend();
    g.precision = readPrecision(o, *op.backend);
    return op;
  }
  void compute() { backend->gemmHost(g); }
  Napi::Value result(Napi::Env env) { return env.Undefined(); }
};

// modelTensors(config) -> { trainable, frozen, anchor }: [{ name, shape }] in layout order.
Napi::Value ModelTensorsOf(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const ModelTensors t = modelTensors(readConfig(env, info[0]));
    auto list = [&](const std::vector<TensorDesc>& descs) {
      Napi::Array a = Napi::Array::New(env, descs.size());
      for (size_t i = 0; i < descs.size(); ++i) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("name", descs[i].name);
        Napi::Array shape = Napi::Array::New(env, descs[i].shape.size());
        for (size_t j = 0; j < descs[i].shape.size(); ++j)
          shape.Set(static_cast<uint32_t>(j), Napi::Number::New(env, static_cast<double>(descs[i].shape[j])));
        o.Set("shape", shape);
        a.Set(static_cast<uint32_t>(i), o);
      }
      return a;
    };
    Napi::Object out = Napi::Object::New(env);
    out.Set("trainable", list(t.trainable));
    out.Set("frozen", list(t.frozen));
    out.Set("anchor", list(t.anchor));
    return out;
  });
}

}  // namespace

void registerModelExports(Napi::Env env, Napi::Object exports) {
  exports.Set("modelStep", Napi::Function::New(env, callSync<ModelStepOp<AdapterPolicyCall>>, "modelStep"));
  exports.Set("modelStepAsync", Napi::Function::New(env, callAsync<ModelStepOp<AdapterPolicyCall>>, "modelStepAsync"));
  exports.Set("copy", Napi::Function::New(env, callSync<CopyOp>, "copy"));
  exports.Set("modelTensors", Napi::Function::New(env, ModelTensorsOf, "modelTensors"));
  exports.Set("modelGemm", Napi::Function::New(env, callSync<GemmOp>, "modelGemm"));
}

}  // namespace craftgrad
