#include "model_call.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../core/backend.h"
#include "../core/model_desc.h"
#include "arg_error.h"
#include "backends.h"
#include "op_call.h"
#include "options.h"
#include "tensor_set.h"
#include "typed_arrays.h"

namespace craftgrad {
namespace {

std::string str(int64_t v) { return std::to_string(v); }

ModelConfig readConfig(Napi::Env env, napi_value value) {
  const Options o(env, value, "config");
  ModelConfig c;
  c.T = o.configSize("tokens");
  c.D = o.configSize("width");
  c.L = o.configSize("blocks");
  c.r = o.configSize("rank");
  c.alpha = o.number("alpha");
  c.m = o.configSize("bridgeBlock");
  c.pool = static_cast<Pooling>(o.choice("pooling", {"mean", "max"}));
  c.anchor = static_cast<AnchorType>(o.choice("anchorType", {"concat", "aq_only", "raw_only"}));
  c.H = o.configSize("headWidth");
  c.K = o.configSize("chunk");
  c.A = o.configSize("actionDims");
  const std::string err = modelConfigError(c);
  if (!err.empty()) throw rangeError(err);
  return c;
}

// Whether the float ranges [x, x + nx) and [y, y + ny) share an element.
bool overlaps(const float* x, int64_t nx, const float* y, int64_t ny) {
  return bytesOverlap(x, nx * int64_t{sizeof(float)}, y, ny * int64_t{sizeof(float)});
}

struct ModelStepOp {
  static constexpr const char* kName = "craftgrad.modelStep";
  Backend* backend = nullptr;
  ModelConfig config;
  ModelStepArgs args;
  std::vector<std::shared_ptr<Memory>> memory;  // the sets' memory, alive until the call settles
  ModelStepResult out;
  JsHold hold;

  static ModelStepOp parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ModelStepOp op;
    const Options o(env, info[0], "options");
    const ModelConfig c = readConfig(env, o.get("config"));
    op.config = c;
    const ModelLayout lay = modelLayout(c);
    ModelStepArgs& a = op.args;
    a.mode = static_cast<ModelMode>(o.choice("mode", {"craft", "baseline", "eval", "evalRetention"}));
    const bool withRet = a.mode == ModelMode::Craft || a.mode == ModelMode::EvalRet;
    const bool withGrad = a.mode == ModelMode::Craft || a.mode == ModelMode::Baseline;
    a.batch = o.integer("batch", 1, int64_t{1} << 24);
    // The sets, each of the length its layout needs, all on params' device.
    struct Named {
      const char* name;
      TensorSetWrap* set;
    };
    std::vector<Named> sets;
    auto set = [&](const char* name, int64_t need, const char* what) -> float* {
      TensorSetWrap* w = TensorSetWrap::unwrap(env, Napi::Value(env, o.get(name)), name);
      if (w->length() != need)
        throw rangeError(std::string(name) + " has " + str(w->length()) + " elements but " + what + " needs " + str(need));
      if (!op.backend) op.backend = &w->backend();
      else if (&w->backend() != op.backend)
        throw rangeError(std::string(name) + " is on " + w->backend().name() + ", params on " + op.backend->name());
      op.memory.push_back(w->memory());
      op.hold.buffer(w->hostBuffer());
      sets.push_back({name, w});
      return w->data();
    };
    a.params = set("params", lay.paramCount, "the model's trainable layout");
    a.frozen = set("frozen", lay.frozenCount, "the model's frozen layout");
    if (withRet) a.anchor = set("anchor", lay.anchorCount, "the model's anchor layout");
    const F32View tokens = readFloat32Array(env, o.get("tokens"), "tokens");
    if (tokens.length != a.batch * c.T * c.D)
      throw rangeError("tokens has " + str(tokens.length) + " elements but batch×T×D needs " + str(a.batch * c.T * c.D));
    const F32View actions = readFloat32Array(env, o.get("actions"), "actions");
    if (actions.length != a.batch * c.actionDim())
      throw rangeError("actions has " + str(actions.length) + " elements but batch×K×A needs " + str(a.batch * c.actionDim()));
    if (withGrad) a.gAct = set("gAct", lay.paramCount, "the model's trainable layout");
    if (a.mode == ModelMode::Craft) a.gRet = set("gRet", lay.paramCount, "the model's trainable layout");
    a.accumulate = o.boolean("accumulate");
    const double scale = o.number("scale");
    if (!std::isfinite(scale)) throw rangeError("scale must be a finite number, got " + std::to_string(scale));
    a.scale = static_cast<float>(scale);
    // Outputs must not alias inputs or each other: the kernels read inputs after writing outputs.
    const size_t inputs = withRet ? 3 : 2;
    for (size_t i = inputs; i < sets.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (overlaps(sets[i].set->data(), sets[i].set->length(), sets[j].set->data(), sets[j].set->length())) {
          const bool bothOut = j >= inputs;  // "gAct and gRet", "gAct and params"
          throw rangeError(std::string(sets[bothOut ? j : i].name) + " and " + sets[bothOut ? i : j].name +
                           " overlap in memory");
        }
    // tokens and actions are host arrays on every backend; on the host they are inputs too.
    if (op.backend->hostMemory())
      for (size_t i = inputs; i < sets.size(); ++i)
        for (const auto& [view, name] : {std::make_pair(&tokens, "tokens"), std::make_pair(&actions, "actions")})
          if (overlaps(sets[i].set->data(), sets[i].set->length(), view->data, view->length))
            throw rangeError(std::string(sets[i].name) + " and " + name + " overlap in memory");
    a.tokens = tokens.data;
    a.actions = actions.data;
    op.hold.buffer(tokens.arrayBuffer);
    op.hold.buffer(actions.arrayBuffer);
    return op;
  }
  void compute() { out = backend->modelStep(config, args); }
  Napi::Value result(Napi::Env env) {
    Napi::Object res = Napi::Object::New(env);
    res.Set("actionLoss", out.actionLoss);
    res.Set("retentionLoss", out.retentionLoss);
    return res;
  }
};

// copy({ dst, src, dstOffset = 0, srcOffset = 0, count }): within one device, no overlap.
struct CopyOp {
  static constexpr const char* kName = "craftgrad.copy";
  Backend* backend = nullptr;
  std::shared_ptr<Memory> dst, src;
  int64_t dstOffset = 0, srcOffset = 0, count = 0;
  JsHold hold;

  static CopyOp parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    CopyOp op;
    const Options o(env, info[0], "options");
    TensorSetWrap* d = TensorSetWrap::unwrap(env, Napi::Value(env, o.get("dst")), "dst");
    TensorSetWrap* s = TensorSetWrap::unwrap(env, Napi::Value(env, o.get("src")), "src");
    op.dstOffset = o.has("dstOffset") ? readCount(env, o.get("dstOffset"), "dstOffset") : 0;
    op.srcOffset = o.has("srcOffset") ? readCount(env, o.get("srcOffset"), "srcOffset") : 0;
    op.count = readCount(env, o.get("count"), "count");
    if (&d->backend() != &s->backend())
      throw rangeError("dst is on " + d->backend().name() + ", src on " + s->backend().name());
    if (op.dstOffset + op.count > d->length())
      throw rangeError("dstOffset + count (" + str(op.dstOffset + op.count) + ") exceeds dst's " + str(d->length()) + " elements");
    if (op.srcOffset + op.count > s->length())
      throw rangeError("srcOffset + count (" + str(op.srcOffset + op.count) + ") exceeds src's " + str(s->length()) + " elements");
    if (overlaps(d->data() + op.dstOffset, op.count, s->data() + op.srcOffset, op.count) &&
        d->data() + op.dstOffset != s->data() + op.srcOffset)
      throw rangeError("dst and src ranges overlap");
    op.backend = &d->backend();
    op.dst = d->memory();
    op.src = s->memory();
    op.hold.buffer(d->hostBuffer());
    op.hold.buffer(s->hostBuffer());
    return op;
  }
  void compute() {
    float* d = dst->data() + dstOffset;
    const float* s = src->data() + srcOffset;
    if (d != s) backend->copy(d, s, count);
  }
  Napi::Value result(Napi::Env env) { return env.Undefined(); }
};

// modelGemm({ M, N, K, alpha, a, transA, b, transB, beta, c, device = 'cpu', variant = 0 }).
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
    auto matrix = [&](const char* name, int64_t need, const char* what) {
      const F32View v = readFloat32Array(env, o.get(name), name);
      if (v.length != need) throw rangeError(std::string(name) + " has " + str(v.length) + " elements but " + what + " needs " + str(need));
      return v;
    };
    const F32View a = matrix("a", g.M * g.K, "M×K"), b = matrix("b", g.K * g.N, "K×N"), c = matrix("c", g.M * g.N, "M×N");
    if (overlaps(c.data, c.length, a.data, a.length) || overlaps(c.data, c.length, b.data, b.length))
      throw rangeError("c overlaps a or b in memory");
    g.a = a.data, g.b = b.data, g.c = c.data;
    g.variant = o.has("variant") ? static_cast<int>(o.integer("variant", 0, 4)) : 0;
    op.backend = o.has("device") ? &readBackend(env, Napi::Value(env, o.get("device")), "device") : &defaultHostBackend();
    for (const F32View* v : {&a, &b, &c}) op.hold.buffer(v->arrayBuffer);
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
  exports.Set("modelStep", Napi::Function::New(env, callSync<ModelStepOp>, "modelStep"));
  exports.Set("modelStepAsync", Napi::Function::New(env, callAsync<ModelStepOp>, "modelStepAsync"));
  exports.Set("copy", Napi::Function::New(env, callSync<CopyOp>, "copy"));
  exports.Set("modelTensors", Napi::Function::New(env, ModelTensorsOf, "modelTensors"));
  exports.Set("modelGemm", Napi::Function::New(env, callSync<GemmOp>, "modelGemm"));
}

}  // namespace craftgrad
