// The benchmark-only natives, `binding.bench` of a repository build (CMakeLists.txt,
// CRAFTGRAD_BENCH; never in the npm package or the prebuilds). Not operations of the backend
// interface: measurements for bench/*.js and a few GPU tests.
//   fmaPeakGflops(seconds): measured fp32 FMA throughput of the pool's threads
//   layer(name, operands): one core/layers.h operation on host Float32Arrays (token ids an
//     Int32Array), on the CPU or
//     on operands.device ('cuda:N'), for the tests of the layers no model uses yet
//     (test/layers.test.mjs)
//   CUDA builds only:
//   cudaTimeCopy(device, elements, reps) -> Float64Array of ms per device-to-device copy
//   cudaMemInfo(device) -> { freeBytes, totalBytes }
//   cudaDeviceProps(device) -> { multiprocessors, clockKHz, computeCapability, fp32LanesPerSM }
//   cudaModelGemmTime(device, M, N, K, transA, transB, reps, variant[, precision]) -> Float64Array of ms
//   cudaModelGemmSetTime(device, shapes, transA, transB, reps, variant, batched[, precision]), cudaModelGemmBatch(device, products, transA, transB, variant)
//     (precision 'fp32', the default, or 'bf16': cuBLASLt as a model call's bf16 products)
//   cudaAttentionTime(operands) -> Float64Array of ms per attentionForward or attentionBackward
//     on device-resident pseudo-random operands, CUDA events
#include "bench_natives.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../../native/core/backend.h"
#include "../../native/core/layers.h"
#include "../../native/cpu/gemm.h"
#include "../../native/napi/backends.h"
#include "../../native/napi/arg_error.h"
#include "../../native/napi/options.h"
#include "../../native/napi/typed_arrays.h"
#ifdef CRAFTGRAD_HAVE_CUDA
#include "../../native/cuda/cuda_backend.h"
#include "../../native/cuda/gemm_host.h"
#endif

namespace craftgrad {
namespace {

Napi::Value FmaPeakGflops(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    const double s = readNumber(info.Env(), info[0], "seconds");
    if (!(s > 0 && s <= 60)) throw rangeError("seconds must be in (0, 60]");
    return Napi::Number::New(info.Env(), measureFmaPeakGflops(s));
  });
}

// ---- layer(name, operands) ----

// Whether the byte ranges [x, x + nx) and [y, y + ny) share a byte (empty ranges never do).
// The operations' own operand reader (native/napi/operands.h) is built around a declared
// list of operands; this test-only entry checks its few host arrays pairwise instead.
bool bytesOverlap(const void* x, int64_t nx, const void* y, int64_t ny) {
  const auto a = reinterpret_cast<uintptr_t>(x), b = reinterpret_cast<uintptr_t>(y);
  return nx > 0 && ny > 0 && a < b + static_cast<uintptr_t>(ny) && b < a + static_cast<uintptr_t>(nx);
}

// The operands of one call: host Float32Arrays (each of exactly the size the operation
// needs) and scratch, placed in the backend's memory: used in place on the CPU, uploaded
// into one workspace lease on a device, and the arrays the operation writes downloaded back.
class Staging {
 public:
  Staging(Napi::Env env, const Options& o, Layers& L) : env_(env), o_(o), L_(L) {}
  // The Float32Array operand `key` of n elements; `written`: downloaded after the call.
  int array(const char* key, int64_t n, bool written) {
    const F32View v = readFloat32Array(env_, o_.get(key), key);
    if (v.length != n)
      throw rangeError(std::string(key) + " has " + std::to_string(v.length) + " elements but needs " + std::to_string(n));
    for (const Arg& a : args_)
      if (a.host && bytesOverlap(a.host, a.n * 4, v.data, n * 4)) throw rangeError(std::string(key) + " overlaps " + a.key);
    args_.push_back({key, v.data, n, written, nullptr});
    return static_cast<int>(args_.size() - 1);
  }
  // The Int32Array operand `key` (read only), of at least `need` elements; its length.
  int ints(const char* key, int64_t need, int64_t* length) {
    const I32View v = readInt32Array(env_, o_.get(key), key);
    if (v.length < need)
      throw rangeError(std::string(key) + " has " + std::to_string(v.length) + " elements but needs at least " +
                       std::to_string(need));
    for (const Arg& a : args_)
      if (a.host && bytesOverlap(a.host, a.n * 4, v.data, v.length * 4)) throw rangeError(std::string(key) + " overlaps " + a.key);
    // Staged as 4-byte words like the float operands (never written back).
    args_.push_back({key, reinterpret_cast<float*>(const_cast<int32_t*>(v.data)), v.length, false, nullptr});
    *length = v.length;
    return static_cast<int>(args_.size() - 1);
  }
  const int32_t* intsAt(int i) const { return reinterpret_cast<const int32_t*>(args_[i].dev); }
  const int32_t* hostInts(int i) const { return reinterpret_cast<const int32_t*>(args_[i].host); }
  // The same when present, else -1.
  int optional(const char* key, int64_t n, bool written) { return o_.has(key) ? array(key, n, written) : -1; }
  // n floats of backend scratch (no host array).
  int scratch(int64_t n) {
    args_.push_back({"scratch", nullptr, n, false, nullptr});
    return static_cast<int>(args_.size() - 1);
  }
  void stage() {
    if (L_.hostMemory()) {
      for (Arg& a : args_) {
        if (a.host) a.dev = a.host;
        else {
          scratchHost_.emplace_back(static_cast<size_t>(a.n > 0 ? a.n : 1));
          a.dev = scratchHost_.back().data();
        }
      }
      return;
    }
    size_t bytes = 0;
    for (const Arg& a : args_) bytes += (static_cast<size_t>(a.n) * 4 + 255) & ~size_t{255};
    lease_ = L_.lease(bytes);
    char* p = lease_->data();
    for (Arg& a : args_) {
      a.dev = reinterpret_cast<float*>(p);
      if (a.host) L_.upload(a.dev, a.host, static_cast<size_t>(a.n) * 4);
      p += (static_cast<size_t>(a.n) * 4 + 255) & ~size_t{255};
    }
  }
  float* operator[](int i) const { return i < 0 ? nullptr : args_[i].dev; }
  void finish() {
    if (L_.hostMemory()) return;
    for (const Arg& a : args_)
      if (a.written) L_.download(a.host, a.dev, static_cast<size_t>(a.n) * 4);
  }

 private:
  struct Arg {
    const char* key;
    float* host;
    int64_t n;
    bool written;
    float* dev;
  };
  Napi::Env env_;
  const Options& o_;
  Layers& L_;
  std::vector<Arg> args_;
  std::vector<std::vector<float>> scratchHost_;
  std::unique_ptr<WorkspaceLease> lease_;
};

constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;

// The attention's shape from the operands (B, T, Tk, heads, kvHeads, hd, scale, causal,
// gateBegin, gateEnd), checked as a model's description would.
AttentionShape attentionShape(const Options& o) {
  AttentionShape s;
  s.B = o.integer("B", 1, kMaxDim);
  s.T = o.integer("T", 1, kMaxDim);
  s.Tk = o.has("Tk") ? o.integer("Tk", 1, kMaxDim) : 0;
  s.heads = o.integer("heads", 1, 4096);
  s.kvHeads = o.integer("kvHeads", 1, 4096);
  s.hd = o.integer("hd", 1, 65536);
  s.scale = static_cast<float>(o.number("scale"));
  s.causal = o.boolean("causal");
  if (s.heads % s.kvHeads) throw rangeError("heads must be a multiple of kvHeads");
  if (s.causal && s.keys() != s.T) throw rangeError("causal attention needs Tk == T");
  if (o.has("gateBegin") || o.has("gateEnd")) {
    s.gateBegin = o.integer("gateBegin", 0, s.keys());
    s.gateEnd = o.integer("gateEnd", s.gateBegin, s.keys());
  }
  return s;
}

// layer(name, operands): core/layers.h's operation `name` on operands.device ('cpu' when
// absent), every operand named as layers.h names it; the outputs are written into the
// caller's arrays. For tests: no model uses these layers yet.
Napi::Value Layer(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) throw typeError("name must be a string");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    const Options o(env, info[1], "operands");
    Backend& backend = o.has("device") ? readBackend(env, Napi::Value(env, o.get("device")), "device") : backendNamed("cpu", "device");
    Layers& L = backend.layers();
    Staging st(env, o, L);
    auto dim = [&](const char* k) { return o.integer(k, 1, kMaxDim); };
    if (name == "layerNorm") {
      const int64_t rows = dim("rows"), D = dim("D");
      const float eps = static_cast<float>(o.number("eps"));
      const int X = st.array("X", rows * D, false), w = st.array("w", D, false), b = st.array("b", D, false);
      const int Y = st.array("Y", rows * D, true), mean = st.array("mean", rows, true), rstd = st.array("rstd", rows, true);
      st.stage();
      L.layerNorm(rows, D, eps, st[X], st[w], st[b], st[Y], st[mean], st[rstd]);
    } else if (name == "layerNormBackward") {
      const int64_t rows = dim("rows"), M = dim("M"), D = dim("D");
      if (rows % M) throw rangeError("rows must be a multiple of M");
      const int dY = st.array("dY", rows * D, false), X = st.array("X", M * D, false);
      const int mean = st.array("mean", M, false), rstd = st.array("rstd", M, false), w = st.array("w", D, false);
      const int dX = st.array("dX", rows * D, true);
      st.stage();
      L.layerNormBackward(rows, M, D, st[dY], st[X], st[mean], st[rstd], st[w], st[dX]);
    } else if (name == "layerNormParamGrad") {
      const int64_t M = dim("M"), D = dim("D");
      const float scale = static_cast<float>(o.number("scale"));
      const bool accumulate = o.boolean("accumulate");
      const int dY = st.array("dY", M * D, false), X = st.array("X", M * D, false);
      const int mean = st.array("mean", M, false), rstd = st.array("rstd", M, false);
      const int dW = st.array("dW", D, true), dB = st.array("dB", D, true);
      st.stage();
      L.layerNormParamGrad(M, D, st[dY], st[X], st[mean], st[rstd], scale, accumulate, st[dW], st[dB]);
    } else if (name == "biasGeluErf") {
      const int64_t rows = dim("rows"), cols = dim("cols");
      const int Z = st.array("Z", rows * cols, true), b = st.array("b", cols, false);
      const int res = st.optional("residual", rows * cols, false), out = st.array("out", rows * cols, true);
      st.stage();
      L.biasGeluErf(st[Z], st[b], st[res], st[out], rows, cols);
    } else if (name == "geluErfBackward") {
      const int64_t n = dim("n"), streams = o.integer("streams", 1, 64);
      const bool inPlace = !o.has("dZ");  // dZ absent: written over G
      const int Z = st.array("Z", n, false), G = st.array("G", streams * n, inPlace);
      const int dZ = inPlace ? G : st.array("dZ", streams * n, true);
      st.stage();
      L.geluErfBackward(st[Z], st[G], st[dZ], n, static_cast<int>(streams));
    } else if (name == "biasRelu") {
      const int64_t rows = dim("rows"), cols = dim("cols");
      const int Z = st.array("Z", rows * cols, true), b = st.optional("b", cols, false);
      const int out = st.array("out", rows * cols, true);
      st.stage();
      L.biasRelu(st[Z], st[b], st[out], rows, cols);
    } else if (name == "reluBackward") {
      const int64_t n = dim("n"), streams = o.integer("streams", 1, 64);
      const bool inPlace = !o.has("dZ");  // dZ absent: written over G
      const int Z = st.array("Z", n, false), G = st.array("G", streams * n, inPlace);
      const int dZ = inPlace ? G : st.array("dZ", streams * n, true);
      st.stage();
      L.reluBackward(st[Z], st[G], st[dZ], n, static_cast<int>(streams));
    } else if (name == "ropeProHead" || name == "rope") {
      const int64_t rows = dim("rows"), width = dim("width"), hd = dim("hd"), T = dim("T");
      if (hd % 2 || width % hd) throw rangeError("hd must be even and divide width");
      const bool inverse = o.boolean("inverse");
      const int X = st.array("X", rows * width, true);
      const int c = st.array("cosT", T * (hd / 2), false), sn = st.array("sinT", T * (hd / 2), false);
      st.stage();
      if (name == "rope") L.rope(st[X], rows, width, hd, T, st[c], st[sn], inverse);
      else L.ropeProHead(st[X], rows, width, hd, T, st[c], st[sn], inverse);
    } else if (name == "broadcastRows" || name == "embedRows") {
      const int64_t B = dim("B"), T = dim("T"), D = dim("D"), t0 = o.integer("t0", 0, kMaxDim), n = dim("n");
      if (t0 + n > T) throw rangeError("t0 + n must be at most T");
      const int dst = st.array(name == "embedRows" ? "H" : "dst", B * T * D, true);
      if (name == "broadcastRows") {
        const int src = st.array("src", n * D, false);
        st.stage();
        L.broadcastRows(st[dst], st[src], B, T, D, t0, n);
      } else {
        const int64_t V = dim("V"), idStride = o.integer("idStride", 0, kMaxDim), idOffset = o.integer("idOffset", 0, kMaxDim);
        int64_t length = 0;
        const int ids = st.ints("ids", (B - 1) * idStride + idOffset + n, &length);
        const int32_t* idHost = st.hostInts(ids);
        for (int64_t b = 0; b < B; ++b)
          for (int64_t i = 0; i < n; ++i) {
            const int32_t id = idHost[b * idStride + idOffset + i];
            if (id < 0 || id >= V) throw rangeError("ids: " + std::to_string(id) + " is not in [0, V)");
          }
        const int embed = st.array("embed", V * D, false);
        st.stage();
        L.embedRows(st[dst], st.intsAt(ids), idStride, idOffset, st[embed], B, T, D, t0, n);
      }
    } else if (name == "copyColumns") {
      const int64_t rows = dim("rows"), cols = dim("cols"), ldDst = dim("ldDst"), ldSrc = dim("ldSrc");
      if (cols > ldDst || cols > ldSrc) throw rangeError("cols must be at most ldDst and ldSrc");
      const bool accumulate = o.boolean("accumulate");
      const int dst = st.array("dst", rows * ldDst, true), src = st.array("src", rows * ldSrc, false);
      st.stage();
      L.copyColumns(st[dst], ldDst, st[src], ldSrc, rows, cols, accumulate);
    } else if (name == "layerScaleAdd") {
      const int64_t rows = dim("rows"), cols = dim("cols");
      const int Y = st.array("Y", rows * cols, true), X = st.array("X", rows * cols, false), g = st.array("gamma", cols, false);
      st.stage();
      L.layerScaleAdd(st[Y], st[X], st[g], rows, cols);
    } else if (name == "layerScaleBackward") {
      const int64_t rows = dim("rows"), cols = dim("cols");
      const bool inPlace = !o.has("dX");  // dX absent: written over dY
      const int dY = st.array("dY", rows * cols, inPlace), g = st.array("gamma", cols, false);
      const int dX = inPlace ? dY : st.array("dX", rows * cols, true);
      st.stage();
      L.layerScaleBackward(st[dY], st[g], st[dX], rows, cols);
    } else if (name == "attentionForward" || name == "attentionBackward") {
      AttentionShape s = attentionShape(o);
      const bool backward = name == "attentionBackward";
      const int64_t streams = backward ? o.integer("streams", 1, 64) : 1;
      const int64_t M = s.B * s.T, Mk = s.B * s.keys();
      const int gate = s.gateEnd > s.gateBegin ? st.optional("gate", 1, false) : -1;
      const int Q = st.array("Q", M * s.qDim(), false), K = st.array("K", Mk * s.kvDim(), false);
      const int V = st.array("V", Mk * s.kvDim(), false);
      const int rowMax = st.array("rowMax", s.rows(), !backward), rowSum = st.array("rowSum", s.rows(), !backward);
      L.checkExtent(M * s.qDim(), "Q");
      L.checkExtent(Mk * s.kvDim(), "K");
      if (!backward) {
        const int Att = st.array("Att", M * s.qDim(), true);
        const int scr = st.scratch(L.attentionScratch(s, 1));
        st.stage();
        s.gate = st[gate];
        L.attentionForward(s, st[Q], st[K], st[V], st[Att], st[rowMax], st[rowSum], st[scr]);
      } else {
        const int dAtt = st.array("dAtt", streams * M * s.qDim(), false);
        const int dQ = st.array("dQ", streams * M * s.qDim(), true);
        const int dK = st.array("dK", streams * Mk * s.kvDim(), true), dV = st.array("dV", streams * Mk * s.kvDim(), true);
        const int dGate = gate >= 0 ? st.array("dGate", streams, true) : -1;
        const int scr = st.scratch(L.attentionScratch(s, static_cast<int>(streams)));
        st.stage();
        s.gate = st[gate];
        L.attentionBackward(s, static_cast<int>(streams), st[Q], st[K], st[V], st[rowMax], st[rowSum], st[dAtt], st[dQ],
                            st[dK], st[dV], st[dGate], st[scr]);
      }
    } else if (name == "patchify") {
      const int64_t B = dim("B"), C = dim("C"), H = dim("H"), W = dim("W"), p = dim("p");
      if (p > H || p > W) throw rangeError("p must be at most H and W");
      const int64_t N = (H / p) * (W / p);
      const int img = st.array("images", B * C * H * W, false), P = st.array("P", B * N * C * p * p, true);
      st.stage();
      L.patchify(st[img], st[P], B, C, H, W, p);
    } else {
      throw rangeError("layer: no operation '" + name + "'");
    }
    st.finish();
    return env.Undefined();
  });
}

#ifdef CRAFTGRAD_HAVE_CUDA

// A device index naming a visible device (RangeError otherwise); CudaError when CUDA is unavailable.
int readDeviceIndex(Napi::Env env, Napi::Value v, const char* name) {
  const double d = readNumber(env, v, name);
  if (!(d >= 0) || d != std::floor(d) || d > 1e6)
    throw rangeError(std::string(name) + " must be a non-negative integer device index, got " + std::to_string(d));
  const cuda::Info& in = cuda::info();
  if (!in.available) throw cuda::CudaError("craftgrad: CUDA is not available: " + in.reason);
  if (d >= static_cast<double>(in.devices.size()))
    throw rangeError(std::string(name) + " is " + std::to_string(static_cast<int>(d)) + " but only " +
                     std::to_string(in.devices.size()) + " CUDA device(s) are visible");
  return static_cast<int>(d);
}

int64_t readInt(Napi::Env env, Napi::Value v, const char* name, int64_t lo, int64_t hi) {
  const double d = readNumber(env, v, name);
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != std::floor(d))
    throw rangeError(std::string(name) + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                     ", got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

Napi::Float64Array toArray(Napi::Env env, const std::vector<double>& ms) {
  Napi::Float64Array out = Napi::Float64Array::New(env, ms.size());
  for (size_t i = 0; i < ms.size(); ++i) out[i] = ms[i];
  return out;
}

// Milliseconds per device-to-device copy (benchmarks: the HBM floor measured in the same run).
Napi::Value CudaTimeCopy(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const int device = readDeviceIndex(env, info[0], "device");
    const int64_t elements = readCount(env, info[1], "elements");
    const int64_t reps = readInt(env, info[2], "reps", 1, 10000);
    return toArray(env, cuda::timeDeviceCopy(device, elements, static_cast<int>(reps)));
  });
}

// { freeBytes, totalBytes } now (tests size their largest sets by it).
Napi::Value CudaMemInfo(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const cuda::MemoryInfo m = cuda::memoryInfo(readDeviceIndex(env, info[0], "device"));
    Napi::Object out = Napi::Object::New(env);
    out.Set("freeBytes", Napi::Number::New(env, static_cast<double>(m.freeBytes)));
    out.Set("totalBytes", Napi::Number::New(env, static_cast<double>(m.totalBytes)));
    return out;
  });
}

// { multiprocessors, clockKHz, computeCapability, fp32LanesPerSM }: the fp32 peak's inputs.
Napi::Value CudaDeviceProps(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const cuda::DeviceProps p = cuda::deviceProps(readDeviceIndex(env, info[0], "device"));
    Napi::Object out = Napi::Object::New(env);
    out.Set("multiprocessors", p.multiprocessors);
    out.Set("clockKHz", p.clockKHz);
    out.Set("computeCapability", std::to_string(p.major) + "." + std::to_string(p.minor));
    out.Set("fp32LanesPerSM", p.fp32LanesPerSM);
    return out;
  });
}

// An optional precision argument: undefined or 'fp32' (the hand-written kernels, as before),
// or 'bf16' (cuBLASLt, as a model call's bf16 products).
GemmPrecision readGemmPrecision(Napi::Env env, Napi::Value v) {
  if (v.IsUndefined() || v.IsNull()) return GemmPrecision::Fp32;
  if (!v.IsString()) throw Napi::TypeError::New(env, "precision must be 'fp32' or 'bf16'");
  const std::string p = v.As<Napi::String>().Utf8Value();
  if (p == "fp32") return GemmPrecision::Fp32;
  if (p == "bf16") return GemmPrecision::Bf16;
  throw rangeError("precision must be 'fp32' or 'bf16', got '" + p + "'");
}

// cudaAttentionTime({ device (index), B, T, Tk?, heads, kvHeads, hd, scale, causal,
// gateBegin?, gateEnd?, precision? ('fp32' | 'bf16'), backward, streams?, reps }): milliseconds
// of each of `reps` calls of Layers::attentionForward (backward false) or attentionBackward
// (`streams` streams, 1 by default) on the device, timed with CUDA events after a warm-up.
// Every operand lives on the device (no upload inside the timing), filled once with seeded
// pseudo-random values in [-1, 1) (the gate parameter 0.5; the backward's rowMax and rowSum
// from one forward). The attention's precision travels in its AttentionShape
// (native/core/layers.h); a backend without bf16 attention throws.
Napi::Value CudaAttentionTime(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const Options o(env, info[0], "operands");
    const int device = readDeviceIndex(env, Napi::Value(env, o.get("device")), "operands.device");
    AttentionShape s = attentionShape(o);
    s.precision = readGemmPrecision(env, Napi::Value(env, o.get("precision")));
    const bool backward = o.boolean("backward");
    const int streams = backward && o.has("streams") ? static_cast<int>(o.integer("streams", 1, 64)) : 1;
    const int reps = static_cast<int>(o.integer("reps", 1, 10000));
    Layers& L = backendNamed("cuda:" + std::to_string(device), "operands.device").layers();
    const int64_t M = s.B * s.T, Mk = s.B * s.keys();
    L.checkExtent(M * s.qDim(), "Q");
    L.checkExtent(Mk * s.kvDim(), "K");
    // [Q, K, V, Att, rowMax, rowSum, gate, dAtt, dQ, dK, dV, dGate, scratch], each 256-byte aligned.
    const int64_t sizes[] = {M * s.qDim(), Mk * s.kvDim(), Mk * s.kvDim(), M * s.qDim(), s.rows(), s.rows(), 1,
                             backward ? streams * M * s.qDim() : 0, backward ? streams * M * s.qDim() : 0,
                             backward ? streams * Mk * s.kvDim() : 0, backward ? streams * Mk * s.kvDim() : 0,
                             backward ? streams : 0, L.attentionScratch(s, streams)};
    constexpr int kCount = sizeof(sizes) / sizeof(sizes[0]);
    size_t bytes = 0;
    for (int64_t n : sizes) bytes += (static_cast<size_t>(n) * 4 + 255) & ~size_t{255};
    std::unique_ptr<WorkspaceLease> lease = L.lease(bytes, s.precision);
    float* at[kCount];
    char* p = lease->data();
    for (int i = 0; i < kCount; ++i) {
      at[i] = reinterpret_cast<float*>(p);
      p += (static_cast<size_t>(sizes[i]) * 4 + 255) & ~size_t{255};
    }
    float* Q = at[0], *K = at[1], *V = at[2], *Att = at[3], *rowMax = at[4], *rowSum = at[5], *gate = at[6];
    float* dAtt = at[7], *dQ = at[8], *dK = at[9], *dV = at[10], *dGate = at[11], *scr = at[12];
    std::vector<float> host;
    uint32_t seed = 2024;
    auto fill = [&](float* dst, int64_t n) {
      host.resize(static_cast<size_t>(n));
      for (float& x : host) {
        seed = seed * 1664525u + 1013904223u;
        x = static_cast<float>(seed) / 2147483648.0f - 1.0f;
      }
      if (n) L.upload(dst, host.data(), static_cast<size_t>(n) * 4);
    };
    fill(Q, sizes[0]);
    fill(K, sizes[1]);
    fill(V, sizes[2]);
    const float g = 0.5f;
    L.upload(gate, &g, 4);
    if (s.gateEnd > s.gateBegin) s.gate = gate;
    std::vector<double> ms;
    if (!backward) {
      ms = cuda::timeOnStream(device, reps, [&]() { L.attentionForward(s, Q, K, V, Att, rowMax, rowSum, scr); });
    } else {
      fill(dAtt, sizes[7]);
      L.attentionForward(s, Q, K, V, Att, rowMax, rowSum, scr);
      ms = cuda::timeOnStream(device, reps, [&]() {
        L.attentionBackward(s, streams, Q, K, V, rowMax, rowSum, dAtt, dQ, dK, dV, s.gated() ? dGate : nullptr, scr);
      });
    }
    float check = 0;
    L.download(&check, backward ? dQ : Att, 4);  // waits, and reports a fault of the last launch
    return toArray(env, ms);
  });
}

// Milliseconds of each launch of the model's product kernel (variant: 0 by shape, 1 simple,
// 2 tiled64, 3 tiled128, 4 small32).
Napi::Value CudaModelGemmTime(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const int device = readDeviceIndex(env, info[0], "device");
    const int64_t lim = int64_t{1} << 16;
    const int64_t M = readInt(env, info[1], "M", 1, lim), N = readInt(env, info[2], "N", 1, lim),
                  K = readInt(env, info[3], "K", 1, lim);
    const bool ta = readBool(env, info[4], "transA"), tb = readBool(env, info[5], "transB");
    const int reps = static_cast<int>(readInt(env, info[6], "reps", 1, 10000));
    const auto variant = static_cast<cuda::GemmVariant>(readInt(env, info[7], "variant", 0, 4));
    return toArray(env, cuda::timeGemm(device, M, N, K, ta, tb, reps, variant, readGemmPrecision(env, info[8])));
  });
}

// Milliseconds of each run of the products [[M, N, K], ...] (1 to 8, same transposes): one
// batched launch per 4 products, or one launch each (what the model's batching saves).
Napi::Value CudaModelGemmSetTime(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const int device = readDeviceIndex(env, info[0], "device");
    if (!info[1].IsArray()) throw Napi::TypeError::New(env, "shapes must be an Array of [M, N, K]");
    const Napi::Array list = info[1].As<Napi::Array>();
    if (list.Length() < 1 || list.Length() > 8) throw rangeError("shapes must hold 1 to 8 products");
    const int64_t lim = int64_t{1} << 16;
    std::vector<cuda::GemmShape> shapes;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      const Napi::Value v = list.Get(i);
      if (!v.IsArray() || v.As<Napi::Array>().Length() != 3)
        throw Napi::TypeError::New(env, "shapes[" + std::to_string(i) + "] must be [M, N, K]");
      const Napi::Array s = v.As<Napi::Array>();
      shapes.push_back({readInt(env, s.Get(0u), "M", 1, lim), readInt(env, s.Get(1u), "N", 1, lim), readInt(env, s.Get(2u), "K", 1, lim)});
    }
    const bool ta = readBool(env, info[2], "transA"), tb = readBool(env, info[3], "transB");
    const int reps = static_cast<int>(readInt(env, info[4], "reps", 1, 10000));
    const auto variant = static_cast<cuda::GemmVariant>(readInt(env, info[5], "variant", 0, 4));
    const bool batched = readBool(env, info[6], "batched");
    return toArray(env, cuda::timeGemmSet(device, shapes, ta, tb, reps, variant, batched, readGemmPrecision(env, info[7])));
  });
}

// products: [{ M, N, K, alpha, a, b, beta, c }] (1 to 8; c overwritten in place), computed
// as the model batches its LoRA gradients. For tests: batched against unbatched, bit for bit.
Napi::Value CudaModelGemmBatch(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const int device = readDeviceIndex(env, info[0], "device");
    if (!info[1].IsArray()) throw Napi::TypeError::New(env, "products must be an Array");
    const Napi::Array list = info[1].As<Napi::Array>();
    if (list.Length() < 1 || list.Length() > 8) throw rangeError("products must hold 1 to 8 products");
    const bool ta = readBool(env, info[2], "transA"), tb = readBool(env, info[3], "transB");
    const auto variant = static_cast<cuda::GemmVariant>(readInt(env, info[4], "variant", 0, 4));
    const int64_t lim = int64_t{1} << 16;
    std::vector<cuda::HostProduct> products;
    std::vector<F32View> outs;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      const std::string at = "products[" + std::to_string(i) + "].";
      const Options o(env, list.Get(i), ("products[" + std::to_string(i) + "]").c_str());
      auto dim = [&](const char* k) { return readInt(env, Napi::Value(env, o.get(k)), (at + k).c_str(), 1, lim); };
      cuda::HostProduct h{dim("M"), dim("N"), dim("K"), static_cast<float>(o.number("alpha")), nullptr, nullptr, 0.0f, nullptr};
      const double beta = o.number("beta");
      if (beta != 0 && beta != 1) throw rangeError(at + "beta must be 0 or 1");
      h.beta = static_cast<float>(beta);
      auto matrix = [&](const char* k, int64_t need) {
        const F32View v = readFloat32Array(env, o.get(k), (at + k).c_str());
        if (v.length != need)
          throw rangeError(at + k + " has " + std::to_string(v.length) + " elements but needs " + std::to_string(need));
        return v;
      };
      h.a = matrix("a", h.M * h.K).data;
      h.b = matrix("b", h.K * h.N).data;
      const F32View c = matrix("c", h.M * h.N);
      for (const F32View& prev : outs)
        if (c.data < prev.data + prev.length && prev.data < c.data + c.length) throw rangeError(at + "c overlaps another product's c");
      outs.push_back(c);
      h.c = c.data;
      products.push_back(h);
    }
    cuda::gemmHostBatch(device, products, ta, tb, variant);
    return env.Undefined();
  });
}

#endif  // CRAFTGRAD_HAVE_CUDA

}  // namespace

void registerBenchNatives(Napi::Env env, Napi::Object exports) {
  Napi::Object bench = Napi::Object::New(env);
  bench.Set("fmaPeakGflops", Napi::Function::New(env, FmaPeakGflops, "fmaPeakGflops"));
  bench.Set("layer", Napi::Function::New(env, Layer, "layer"));
#ifdef CRAFTGRAD_HAVE_CUDA
  bench.Set("cudaTimeCopy", Napi::Function::New(env, CudaTimeCopy, "cudaTimeCopy"));
  bench.Set("cudaMemInfo", Napi::Function::New(env, CudaMemInfo, "cudaMemInfo"));
  bench.Set("cudaDeviceProps", Napi::Function::New(env, CudaDeviceProps, "cudaDeviceProps"));
  bench.Set("cudaModelGemmTime", Napi::Function::New(env, CudaModelGemmTime, "cudaModelGemmTime"));
  bench.Set("cudaModelGemmSetTime", Napi::Function::New(env, CudaModelGemmSetTime, "cudaModelGemmSetTime"));
  bench.Set("cudaModelGemmBatch", Napi::Function::New(env, CudaModelGemmBatch, "cudaModelGemmBatch"));
  bench.Set("cudaAttentionTime", Napi::Function::New(env, CudaAttentionTime, "cudaAttentionTime"));
#endif
  exports.Set("bench", bench);
}

}  // namespace craftgrad
