#include "vla_desc.h"

#include <cmath>

namespace craftgrad {
namespace {

const char* const kTowerNames[2] = {"featurizer", "fused_featurizer"};
const char* const kVitLinearNames[kVitLinears] = {"attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"};
const char* const kHeadLinears[8] = {"q_proj", "k_self", "v_self", "k_adapter", "v_adapter", "k_task", "v_task", "o_proj"};

// (out, in) of a tower block's linear.
void vitLinearShape(const VitConfig& t, int i, int64_t* out, int64_t* in) {
  switch (static_cast<VitLinear>(i)) {
    case VitLinear::Qkv: *out = 3 * t.D; *in = t.D; return;
    case VitLinear::Proj: *out = t.D; *in = t.D; return;
    case VitLinear::Fc1: *out = t.mlp; *in = t.D; return;
    default: *out = t.D; *in = t.mlp; return;
  }
}

void pushLora(std::vector<TensorDesc>& t, const std::string& module, int64_t r, int64_t out, int64_t in) {
  t.push_back({"base_model.model." + module + ".lora_A.weight", {r, in}});
  t.push_back({"base_model.model." + module + ".lora_B.weight", {out, r}});
}

}  // namespace

Qwen2Config VlaConfig::decoder() const {
  Qwen2Config q;
  q.D = D;
  q.L = L;
  q.heads = heads;
  q.kvHeads = kvHeads;
  q.I = I;
  q.V = V;
  q.eps = eps;
  q.theta = theta;
  q.P = 1 + patches();
  q.S = promptTokens();
  q.Q = Q;
  q.r = r;
  q.alpha = alpha;
  q.targets = (1u << kQwen2Linears) - 1;
  q.A = A;
  q.Hh = 1;
  q.m = m;
  q.span = span;
  q.pool = pool;
  q.anchor = anchor;
  return q;
}

VitStemOffsets vitStemOffsets(const VitConfig& t) {
  VitStemOffsets o{};
  int64_t at = 0;
  auto take = [&](int64_t n) { const int64_t p = at; at += n; return p; };
  o.patchW = take(t.D * t.pixels());
  o.patchB = take(t.D);
  o.pos = take(t.N() * t.D);
  o.cls = t.cls ? take(t.D) : -1;
  o.reg = t.reg ? take(t.reg * t.D) : -1;
  o.floats = at;
  return o;
}

VitBlockOffsets vitBlockOffsets(const VitConfig& t) {
  VitBlockOffsets o{};
  int64_t at = 0;
  auto take = [&](int64_t n) { const int64_t p = at; at += n; return p; };
  o.norm1W = take(t.D);
  o.norm1B = take(t.D);
  o.qkvW = take(3 * t.D * t.D);
  o.qkvB = take(3 * t.D);
  o.projW = take(t.D * t.D);
  o.projB = take(t.D);
  o.ls1 = t.layerScale ? take(t.D) : -1;
  o.norm2W = take(t.D);
  o.norm2B = take(t.D);
  o.fc1W = take(t.mlp * t.D);
  o.fc1B = take(t.mlp);
  o.fc2W = take(t.D * t.mlp);
  o.fc2B = take(t.D);
  o.ls2 = t.layerScale ? take(t.D) : -1;
  o.floats = at;
  return o;
}

ProjectorOffsets projectorOffsets(const VlaConfig& c) {
  ProjectorOffsets o{};
  int64_t at = 0;
  auto take = [&](int64_t n) { const int64_t p = at; at += n; return p; };
  o.fc1W = take(c.projHidden * c.visionDim());
  o.fc1B = take(c.projHidden);
  o.fc2W = take(c.D * c.projHidden);
  o.fc2B = take(c.D);
  o.fc3W = take(c.D * c.D);
  o.fc3B = take(c.D);
  o.floats = at;
  return o;
}

std::vector<TensorDesc> vlaTrainable(const VlaConfig& c) {
  std::vector<TensorDesc> t;
  for (int k = 0; k < 2; ++k) {
    const VitConfig& v = c.tower[k];
    const std::string tower = std::string("vision_backbone.") + kTowerNames[k];
    pushLora(t, tower + ".patch_embed.proj", c.r, v.D, v.pixels());
    for (int64_t b = 0; b < v.run(); ++b)
      for (int i = 0; i < kVitLinears; ++i) {
        int64_t out = 0, in = 0;
        vitLinearShape(v, i, &out, &in);
        pushLora(t, tower + ".blocks." + std::to_string(b) + "." + kVitLinearNames[i], c.r, out, in);
      }
  }
  pushLora(t, "projector.fc1", c.r, c.projHidden, c.visionDim());
  pushLora(t, "projector.fc2", c.r, c.D, c.projHidden);
  pushLora(t, "projector.fc3", c.r, c.D, c.D);
  const Qwen2Config q = c.decoder();
  for (int64_t l = 0; l < c.L; ++l)
    for (int i = 0; i < kQwen2Linears; ++i) {
      const std::string group = i >= static_cast<int>(Qwen2Linear::Gate) ? "mlp." : "self_attn.";
      pushLora(t, "language_model.model.layers." + std::to_string(l) + "." + group + qwen2LinearName(i), c.r,
               q.linearOut(i), q.linearIn(i));
    }
  t.push_back({"action_queries.weight", {c.Q, c.D}});
  if (c.proprio) {
    t.push_back({"proprio_projector.fc1.weight", {c.D, c.proprioDim}});
    t.push_back({"proprio_projector.fc1.bias", {c.D}});
    t.push_back({"proprio_projector.fc2.weight", {c.D, c.D}});
    t.push_back({"proprio_projector.fc2.bias", {c.D}});
  }
  const std::string head = "action_head.model.";
  t.push_back({head + "layer_norm1.weight", {c.headIn()}});
  t.push_back({head + "layer_norm1.bias", {c.headIn()}});
  t.push_back({head + "fc1.weight", {c.D, c.headIn()}});
  t.push_back({head + "fc1.bias", {c.D}});
  for (int64_t b = 0; b < c.NB; ++b) {
    const std::string blk = head + "mlp_resnet_blocks." + std::to_string(b) + ".";
    t.push_back({blk + "ffn.0.weight", {c.D}});
    t.push_back({blk + "ffn.0.bias", {c.D}});
    t.push_back({blk + "ffn.1.weight", {c.D, c.D}});
    t.push_back({blk + "ffn.1.bias", {c.D}});
    for (const char* lin : kHeadLinears) {
      t.push_back({blk + lin + ".weight", {c.D, c.D}});
      t.push_back({blk + lin + ".bias", {c.D}});
    }
    t.push_back({blk + "gating_factor", {1}});
  }
  t.push_back({head + "layer_norm2.weight", {c.D}});
  t.push_back({head + "layer_norm2.bias", {c.D}});
  t.push_back({head + "fc2.weight", {c.A, c.D}});
  t.push_back({head + "fc2.bias", {c.A}});
  return t;
}

VlaLayout vlaLayout(const VlaConfig& c) {
  const std::vector<TensorDesc> t = vlaTrainable(c);
  VlaLayout lay;
  int64_t o = 0;
  size_t k = 0;
  auto next = [&]() { const int64_t p = o; o += t[k++].size(); return p; };
  for (int tw = 0; tw < 2; ++tw) {
    VitLoraLayout& v = lay.tower[tw];
    v.patchA = next();
    v.patchB = next();
    v.A.assign(c.tower[tw].run(), std::vector<int64_t>(kVitLinears, 0));
    v.B = v.A;
    for (int64_t b = 0; b < c.tower[tw].run(); ++b)
      for (int i = 0; i < kVitLinears; ++i) {
        v.A[b][i] = next();
        v.B[b][i] = next();
      }
  }
  for (int i = 0; i < 3; ++i) {
    lay.projA[i] = next();
    lay.projB[i] = next();
  }
  lay.llm.loraA.assign(c.L, std::vector<int64_t>(kQwen2Linears, -1));
  lay.llm.loraB = lay.llm.loraA;
  for (int64_t l = 0; l < c.L; ++l)
    for (int i = 0; i < kQwen2Linears; ++i) {
      lay.llm.loraA[l][i] = next();
      lay.llm.loraB[l][i] = next();
    }
  lay.queries = lay.llm.queries = next();
  lay.anchorCount = lay.llm.anchorCount = o;
  lay.headBegin = o;
  if (c.proprio) {
    lay.pFc1W = next();
    lay.pFc1B = next();
    lay.pFc2W = next();
    lay.pFc2B = next();
  }
  lay.ln1W = next();
  lay.ln1B = next();
  lay.fc1W = next();
  lay.fc1B = next();
  lay.blocks.resize(c.NB);
  for (HeadBlockLayout& b : lay.blocks) {
    int64_t* f[] = {&b.lnW, &b.lnB, &b.ffW, &b.ffB, &b.qW, &b.qB, &b.kSelfW, &b.kSelfB, &b.vSelfW, &b.vSelfB, &b.kAdW,
                    &b.kAdB, &b.vAdW, &b.vAdB, &b.kTaskW, &b.kTaskB, &b.vTaskW, &b.vTaskB, &b.oW, &b.oB, &b.gate};
    for (int64_t* p : f) *p = next();
  }
  lay.ln2W = next();
  lay.ln2B = next();
  lay.fc2W = next();
  lay.fc2B = next();
  lay.paramCount = lay.llm.paramCount = o;
  return lay;
}

std::vector<TensorDesc> vlaFrozenGroups(const VlaConfig& c) {
  std::vector<TensorDesc> g;
  for (int k = 0; k < 2; ++k) {
    const VitConfig& v = c.tower[k];
    g.push_back({std::string(kTowerNames[k]) + ".stem", {vitStemOffsets(v).floats}});
    for (int64_t b = 0; b < v.run(); ++b)
      g.push_back({std::string(kTowerNames[k]) + ".blocks." + std::to_string(b), {vitBlockOffsets(v).floats}});
  }
  g.push_back({"projector", {projectorOffsets(c).floats}});
  g.push_back({"embed_tokens", {c.V, c.D}});
  const int64_t layer = qwen2LayerOffsets(c.decoder()).floats;
  for (int64_t l = 0; l < c.L; ++l) g.push_back({"layers." + std::to_string(l), {layer}});
  g.push_back({"norm", {c.D}});
  return g;
}

void proHeadRopeTables(int64_t hd, int64_t n, std::vector<float>& cosT, std::vector<float>& sinT) {
  // RotaryPositionEmbedding (action_heads.py:150-164): inv_freq = 1/(10000^(arange(0,hd,2)/hd))
  // in fp32 (the exponent an fp32 quotient, the power in fp32 as torch computes it, here in
  // double rounded once), t·inv_freq in fp32, cos/sin in fp32.
  const int64_t half = hd / 2;
  cosT.assign(n * half, 0.0f);
  sinT.assign(n * half, 0.0f);
  for (int64_t j = 0; j < half; ++j) {
    const float e = static_cast<float>(2 * j) / static_cast<float>(hd);
    const float inv = 1.0f / static_cast<float>(std::pow(10000.0, static_cast<double>(e)));
    for (int64_t t = 0; t < n; ++t) {
      const float ang = static_cast<float>(t) * inv;
      cosT[t * half + j] = static_cast<float>(std::cos(static_cast<double>(ang)));
      sinT[t * half + j] = static_cast<float>(std::sin(static_cast<double>(ang)));
    }
  }
}

std::string vlaConfigError(const VlaConfig& c) {
  for (int k = 0; k < 2; ++k) {
    const VitConfig& v = c.tower[k];
    const std::string at = std::string("config.towers[") + std::to_string(k) + "].";
    const struct { const char* name; int64_t v, lo, hi; } dims[] = {
        {"embedDim", v.D, 1, 1 << 14}, {"depth", v.depth, 2, 256},  {"numHeads", v.heads, 1, 256},
        {"mlpHidden", v.mlp, 1, 1 << 16}, {"patchSize", v.patch, 1, 64}, {"imageSize", v.image, 1, 4096},
        {"classToken", v.cls, 0, 1},    {"regTokens", v.reg, 0, 64}};
    for (const auto& d : dims)
      if (d.v < d.lo || d.v > d.hi)
        return at + d.name + " must be an integer from " + std::to_string(d.lo) + " to " + std::to_string(d.hi) +
               ", got " + std::to_string(d.v);
    if (v.D % v.heads != 0) return at + "numHeads must divide embedDim";
    if (v.image < v.patch) return at + "imageSize must be at least patchSize";
    if (!std::isfinite(v.eps) || v.eps <= 0) return at + "layerNormEps must be a finite number > 0";
  }
  if (c.tower[0].image != c.tower[1].image || c.tower[0].patch != c.tower[1].patch)
    return "config.towers must share one image size and patch size (the 6-channel image feeds both)";
  const struct { const char* name; int64_t v, lo, hi; } dims[] = {
      {"views", c.views, 1, 8},         {"projectorHidden", c.projHidden, 1, 1 << 16}, {"hiddenSize", c.D, 1, 1 << 15},
      {"numLayers", c.L, 1, 1024},      {"numHeads", c.heads, 1, 1024},   {"numKvHeads", c.kvHeads, 1, 1024},
      {"intermediateSize", c.I, 1, 1 << 17}, {"vocabSize", c.V, 1, 1 << 24}, {"inputIds", c.S, 0, 1 << 16},
      {"queries", c.Q, 1, 1 << 12},     {"rank", c.r, 1, 1 << 14},        {"headBlocks", c.NB, 1, 1024},
      {"chunk", c.chunk, 1, 1024},      {"actionDims", c.A, 1, 1 << 8},   {"proprioDim", c.proprioDim, c.proprio ? 1 : 0, 1 << 12}};
  for (const auto& d : dims)
    if (d.v < d.lo || d.v > d.hi)
      return std::string("config.") + d.name + " must be an integer from " + std::to_string(d.lo) + " to " +
             std::to_string(d.hi) + ", got " + std::to_string(d.v);
  if (c.S < c.Q + 1)
    return "config.inputIds (" + std::to_string(c.S) + " per sample) must hold BOS and the " + std::to_string(c.Q) +
           " action placeholders (at least queries + 1)";
  if (c.patches() < 1) return "config: no vision tokens";
  if (c.NB > c.L)
    return "config.headBlocks (" + std::to_string(c.NB) + ") must be at most numLayers (" + std::to_string(c.L) +
           "): head block i reads hidden_states[i+1]";
  if (c.D % c.headHeads != 0 || c.headHd() % 2 != 0)
    return "config.hiddenSize must be a multiple of 16: the action head has 8 heads of an even width";
  if (c.m < 0 || c.m > c.L)
    return "config.bridgeLayer must be an integer from 0 to numLayers=" + std::to_string(c.L) + ", got " + std::to_string(c.m);
  if (!std::isfinite(c.alpha) || c.alpha <= 0) return "config.alpha must be a finite number > 0";
  const std::string llm = qwen2ConfigError(c.decoder());
  if (!llm.empty()) return llm;
  return "";
}

}  // namespace craftgrad
