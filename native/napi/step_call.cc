#include "step_call.h"

#include <cmath>
#include <string>

#include "arg_error.h"

namespace craftgrad {

void readConfigSizes(const Options& config, std::initializer_list<ConfigSize> sizes) {
  for (const ConfigSize& s : sizes) *s.field = config.configSize(s.key);
}

void readFeatureOptions(const Options& config, Pooling* pool, AnchorType* anchor) {
  *pool = static_cast<Pooling>(config.choice("pooling", {"mean", "max"}));
  *anchor = static_cast<AnchorType>(config.choice("anchorType", {"concat", "aq_only", "raw_only"}));
}

void throwConfigError(const std::string& err) {
  if (!err.empty()) throw rangeError(err);
}

const Wording kModelStepWords{"{x} is on {xv}, {y} on {yv}"};

StepHeader readStepHeader(const Options& o) {
  StepHeader h;
  h.mode = static_cast<ModelMode>(o.choice("mode", {"craft", "baseline", "eval", "evalRetention"}));
  h.retention = h.mode == ModelMode::Craft || h.mode == ModelMode::EvalRet;
  h.gradients = h.mode == ModelMode::Craft || h.mode == ModelMode::Baseline;
  h.batch = o.integer("batch", 1, int64_t{1} << 24);
  return h;
}

void readGradientSets(const Options& o, Operands& ops, const StepHeader& h, const Need& trainable, float** gAct,
                      float** gRet) {
  if (h.gradients) *gAct = ops.set(o.get("gAct"), "gAct", Access::Write, trainable)->data();
  if (h.mode == ModelMode::Craft) *gRet = ops.set(o.get("gRet"), "gRet", Access::Write, trainable)->data();
}

void readGradientWrite(const Options& o, bool* accumulate, float* scale) {
  *accumulate = o.boolean("accumulate");
  const double s = o.number("scale");
  if (!std::isfinite(s)) throw rangeError("scale must be a finite number, got " + std::to_string(s));
  *scale = static_cast<float>(s);
}

GemmPrecision readPrecision(const Options& o, const Backend& backend) {
  const GemmPrecision p =
      o.has("precision") ? static_cast<GemmPrecision>(o.choice("precision", {"fp32", "bf16"})) : GemmPrecision::Fp32;
  if (p == GemmPrecision::Bf16 && backend.hostMemory())
    throw rangeError("precision 'bf16' needs a CUDA device (device is '" + backend.name() +
                     "'): the CPU computes products in fp32");
  return p;
}

Napi::Value stepResult(Napi::Env env, const ModelStepResult& r) {
  Napi::Object res = Napi::Object::New(env);
  res.Set("actionLoss", r.actionLoss);
  res.Set("retentionLoss", r.retentionLoss);
  return res;
}

}  // namespace craftgrad
