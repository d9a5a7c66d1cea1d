// What the models' step calls (model_call.cc, qwen2_call.cc) read and return alike: the mode
// and batch, the gradient sets and how to write them, the losses. Each call keeps its own
// configuration, inputs and order of checks; these read their part the same way for both.
#pragma once
#include <napi.h>

#include <cstdint>
#include <initializer_list>
#include <string>

#include "../core/backend.h"
#include "../core/model_desc.h"
#include "op_call.h"
#include "operands.h"
#include "options.h"

namespace craftgrad {

// Model-configuration sizes (Options::configSize) into their fields, in the order given.
struct ConfigSize {
  const char* key;
  int64_t* field;
};
void readConfigSizes(const Options& config, std::initializer_list<ConfigSize> sizes);

// config.pooling ('mean' | 'max') and config.anchorType ('concat' | 'aq_only' | 'raw_only'):
// how every model pools its bridge features.
void readFeatureOptions(const Options& config, Pooling* pool, AnchorType* anchor);
// A model description's validation (empty: usable) as the RangeError naming the field.
void throwConfigError(const std::string& err);

// The wording of both steps' operand errors (tests pin it): "gAct is on cpu, params on cuda:0".
extern const Wording kModelStepWords;

struct StepHeader {
  ModelMode mode;
  bool retention;  // an anchor forward: the anchor set is read
  bool gradients;  // gAct is written (and gRet in Craft)
  int64_t batch;
};
// options.mode ('craft' | 'baseline' | 'eval' | 'evalRetention'), then options.batch (1 to 2^24).
StepHeader readStepHeader(const Options& o);

// gAct (when the mode writes gradients) and gRet (in Craft) as written sets of the trainable
// layout; null where the mode writes none.
void readGradientSets(const Options& o, Operands& ops, const StepHeader& h, const Need& trainable, float** gAct,
                      float** gRet);

// options.accumulate and options.scale (a finite number).
void readGradientWrite(const Options& o, bool* accumulate, float* scale);

// options.precision ('fp32', the default, or 'bf16': every product in bf16 with fp32
// accumulation, CUDA only); a RangeError naming the device for 'bf16' on a host backend.
GemmPrecision readPrecision(const Options& o, const Backend& backend);

// { actionLoss, retentionLoss }.
Napi::Value stepResult(Napi::Env env, const ModelStepResult& r);

// One model's step as an operation (op_call.h), the same for every model. `Model` states
// what differs: kName, its Config and Args types, readConfig(env, value), readOperands(env,
// options, header, config, operands, args) (its sets and host arrays, in its own order of
// checks; returns the backend), and step(layers, config, args) (its driver, native/models).
// Whether a step's frozen weights arrived as a bf16 set (Args::frozenBf16; false for the
// models without that field).
template <typename A>
auto frozenIsBf16(const A& a, int) -> decltype(static_cast<bool>(a.frozenBf16)) {
  return a.frozenBf16;
}
template <typename A>
bool frozenIsBf16(const A&, long) {
  return false;
}

template <typename Model>
struct ModelStepOp {
  static constexpr const char* kName = Model::kName;
  Backend* backend = nullptr;
  typename Model::Config config;
  typename Model::Args args;
  ModelStepResult out;
  JsHold hold;

  static ModelStepOp parse(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ModelStepOp op;
    const Options o(env, info[0], "options");
    op.config = Model::readConfig(env, o.get("config"));
    const StepHeader h = readStepHeader(o);
    op.args.mode = h.mode;
    op.args.batch = h.batch;
    Operands ops(env, &op.hold, kModelStepWords);
    op.backend = Model::readOperands(env, o, h, op.config, ops, op.args);
    op.args.precision = readPrecision(o, *op.backend);
    if (frozenIsBf16(op.args, 0) && op.args.precision != GemmPrecision::Bf16)
      throw rangeError("frozen is a TensorSet of dtype 'bf16', which needs precision 'bf16' (precision is 'fp32')");
    readGradientWrite(o, &op.args.accumulate, &op.args.scale);
    ops.requireDisjoint();
    return op;
  }
  void compute() { out = Model::step(backend->layers(), config, args); }
  Napi::Value result(Napi::Env env) { return stepResult(env, out); }
};

}  // namespace craftgrad
