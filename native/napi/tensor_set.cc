#include "tensor_set.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "arg_error.h"
#include "backends.h"
#include "env_data.h"
#include "options.h"
#include "typed_arrays.h"

namespace craftgrad {
namespace {

// A random 128-bit tag: what an object must carry to be unwrapped as a TensorSet.
constexpr napi_type_tag kSetTag = {0x6a1c3f1e9b2d4c07ULL, 0x8f0e2a5d7c3b1e46ULL};

// What create() hands the constructor through an External (JS code cannot make one).
struct Pending {
  Backend* backend;
  std::shared_ptr<Layout> layout;
};

std::string num(int64_t v) { return std::to_string(v); }

std::string label(const char* name, int64_t index) {
  return index < 0 ? std::string(name) : std::string(name) + "[" + std::to_string(index) + "]";
}

}  // namespace

Napi::Function TensorSetWrap::define(Napi::Env env) {
  Napi::Function ctor = DefineClass(
      env, "TensorSet",
      {InstanceAccessor<&TensorSetWrap::deviceName>("device"),
       InstanceAccessor<&TensorSetWrap::lengthValue>("length"),
       InstanceAccessor<&TensorSetWrap::dtypeValue>("dtype"),
       InstanceAccessor<&TensorSetWrap::byteLengthValue>("byteLength"),
       InstanceAccessor<&TensorSetWrap::numTensors>("numTensors"),
       InstanceAccessor<&TensorSetWrap::disposed>("disposed"),
       InstanceAccessor<&TensorSetWrap::hostData>("data"),
       InstanceMethod<&TensorSetWrap::upload>("upload"),
       InstanceMethod<&TensorSetWrap::download>("download"),
       InstanceMethod<&TensorSetWrap::fill>("fill"),
       InstanceMethod<&TensorSetWrap::dispose>("dispose")});
  envData(env).tensorSet = Napi::Persistent(ctor);  // for create(), per environment
  return ctor;
}

Napi::Object TensorSetWrap::create(Napi::Env env, Backend& backend, std::shared_ptr<Layout> layout) {
  Pending pending{&backend, std::move(layout)};
  return envData(env).tensorSet.New({Napi::External<Pending>::New(env, &pending)});
}

bool TensorSetWrap::is(Napi::Env env, Napi::Value v) {
  if (!v.IsObject()) return false;
  bool result = false;
  return napi_check_object_type_tag(env, v, &kSetTag, &result) == napi_ok && result;
}

TensorSetWrap* TensorSetWrap::unwrap(Napi::Env env, Napi::Value v, const char* name, int64_t index, bool allowBf16) {
  if (!is(env, v)) throw typeError(label(name, index) + " must be a TensorSet, got " + describeValue(env, v));
  TensorSetWrap* w = Unwrap(v.As<Napi::Object>());
  w->live(env, name, index);
  if (w->bf16_ && !allowBf16)
    throw typeError(label(name, index) + " is a TensorSet of dtype 'bf16', but " + label(name, index) +
                    " must be 'fp32' (only a model step's frozen weights may be bf16)");
  return w;
}

void TensorSetWrap::live(Napi::Env env, const char* name, int64_t index) {
  if (!mem_) throw typeError(label(name, index) + " is a disposed TensorSet");
  hostBuffer_ = nullptr;
  if (host_.IsEmpty()) return;
  // The array may have been detached (transferred) since the set was made.
  size_t length = 0;
  void* data = nullptr;
  napi_value buffer = nullptr;
  NAPI_THROW_IF_FAILED_VOID(env, napi_get_typedarray_info(env, host_.Value(), nullptr, &length, &data, &buffer, nullptr));
  if (static_cast<int64_t>(length) != mem_->length() || (length > 0 && data != mem_->data()))
    throw typeError(label(name, index) + " is backed by a detached ArrayBuffer");
  hostBuffer_ = buffer;
}

// new TensorSet({ device, sizes | like, data? }); create() passes an External instead.
TensorSetWrap::TensorSetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorSetWrap>(info) {
  Napi::Env env = info.Env();
  try {
    if (info[0].IsExternal()) {
      Pending* p = info[0].As<Napi::External<Pending>>().Data();
      init(env, *p->backend, p->layout, env.Undefined(), false);
    } else if (const Options o(env, info[0], "options"); o.has("view")) {
      initView(env, o);
    } else {
      const napi_value likeValue = o.get("like");
      TensorSetWrap* like = isNullish(env, likeValue) ? nullptr : unwrap(env, Napi::Value(env, likeValue), "like", -1, true);
      if (!like && !o.has("sizes")) throw typeError("options must have sizes or like");
      const std::vector<int64_t> sizes = like ? like->layout_->sizes() : readSizes(env, o.get("sizes"), "sizes");
      int64_t total = 0;
      for (int64_t s : sizes) {
        total += s;
        if (total > (int64_t{1} << 52)) throw rangeError("sizes add up to more than 2^52 elements");
      }
      Backend& backend = readBackend(env, Napi::Value(env, o.get("device")), "device");
      const bool bf16 = o.has("dtype") && o.choice("dtype", {"fp32", "bf16"}) == 1;
      if (bf16 && backend.hostMemory())
        throw rangeError("dtype 'bf16' needs a CUDA device (device is '" + backend.name() +
                         "'): a 'cpu' set is a Float32Array");
      std::shared_ptr<Layout> layout = like && &like->backend() == &backend ? like->layout_ : backend.layout(sizes);
      bf16_ = bf16;
      init(env, backend, std::move(layout), Napi::Value(env, o.get("data")), true);
    }
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw jsErrorFor(env, e);
  }
  napi_type_tag_object(env, info.This(), &kSetTag);
}

// new TensorSet({ view: parent, offset, sizes }): elements [offset, offset + Σsizes) of
// parent, no copy (host: a Float32Array on the parent's buffer; device: a MemoryView).
void TensorSetWrap::initView(Napi::Env env, const Options& o) {
  TensorSetWrap* parent = unwrap(env, Napi::Value(env, o.get("view")), "view");
  const std::vector<int64_t> sizes = readSizes(env, o.get("sizes"), "sizes");
  const int64_t offset = readCount(env, o.get("offset"), "offset");
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  if (offset > parent->length() || total > parent->length() - offset) {
    throw rangeError("a view of " + num(total) + " elements at offset " + num(offset) + " does not fit in the set's " + num(parent->length()));
  }
  Backend& backend = parent->backend();
  if (backend.hostMemory()) {
    const Napi::TypedArray whole = parent->host_.Value().As<Napi::TypedArray>();
    const Napi::Float32Array part = Napi::Float32Array::New(env, static_cast<size_t>(total), whole.ArrayBuffer(),
                                                            whole.ByteOffset() + static_cast<size_t>(offset) * sizeof(float));
    init(env, backend, backend.layout(sizes), part, false);
    return;
  }
  mem_ = std::make_shared<MemoryView>(parent->mem_, offset, total);
  backend_ = &backend;
  total_ = total;
  layout_ = backend.layout(sizes);
  count_ = layout_->count();
}

// A zero-filled Float32Array of n elements, made by calling the JS constructor: V8 throws a
// RangeError there when the buffer cannot be allocated, where napi_create_arraybuffer (what
// Napi::Float32Array::New calls) ends the process with a fatal out-of-memory error. Sizes
// adding up to 10^12 elements must be an error, not an abort (found by test/fuzz, native-sets).
static Napi::Value zeroFloat32Array(Napi::Env env, int64_t n) {
  napi_value global, ctor, result;
  napi_value arg = Napi::Number::New(env, static_cast<double>(n));
  if (napi_get_global(env, &global) != napi_ok || napi_get_named_property(env, global, "Float32Array", &ctor) != napi_ok ||
      napi_new_instance(env, ctor, 1, &arg, &result) != napi_ok) {
    bool pending = false;
    napi_value ignored;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &ignored);
    throw rangeError("sizes add up to " + num(n) + " elements (" + num(n * int64_t{4}) + " bytes): more than can be allocated");
  }
  return Napi::Value(env, result);
}

void TensorSetWrap::init(Napi::Env env, Backend& backend, std::shared_ptr<Layout> layout, Napi::Value data, bool zero) {
  const int64_t total = layout->total();
  if (backend.hostMemory()) {
    Napi::Value array = data;
    if (isNullish(env, data)) {
      array = zeroFloat32Array(env, total);
    } else {
      const F32View v = readFloat32Array(env, data, "data");
      if (v.length != total) throw rangeError("data has " + num(v.length) + " elements but sizes add up to " + num(total));
    }
    const F32View v = readFloat32Array(env, array, "data");
    mem_ = std::make_shared<HostSpan>(v.data, v.length);
    host_ = Napi::Persistent(array);
  } else {
    if (!isNullish(env, data)) throw rangeError("data is only for 'cpu' sets; upload() fills a device set");
    // bf16: ⌈total/2⌉ floats of storage hold the 2-byte elements (zero bits are +0 either way).
    mem_ = backend.allocate(bf16_ ? total / 2 + total % 2 : total);
    if (zero) backend.fill(*mem_, 0.0f);
  }
  backend_ = &backend;
  total_ = total;
  count_ = layout->count();
  layout_ = std::move(layout);
}

Napi::Value TensorSetWrap::deviceName(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), backend_ ? backend_->name() : "cpu");
}
Napi::Value TensorSetWrap::lengthValue(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(total_));
}
Napi::Value TensorSetWrap::dtypeValue(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), bf16_ ? "bf16" : "fp32");
}
Napi::Value TensorSetWrap::byteLengthValue(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(total_ * (bf16_ ? 2 : 4)));
}
Napi::Value TensorSetWrap::numTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(count_));
}
Napi::Value TensorSetWrap::disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !mem_); }
Napi::Value TensorSetWrap::hostData(const Napi::CallbackInfo& info) {
  return host_.IsEmpty() ? info.Env().Undefined() : host_.Value();
}

namespace {

// The host array and element offset of upload/download, checked to fit in the set.
F32View readHostRange(const Napi::CallbackInfo& info, const char* name, int64_t length, int64_t* offset) {
  Napi::Env env = info.Env();
  const F32View v = readFloat32Array(env, info[0], name);
  *offset = isNullish(env, info[1]) ? 0 : readCount(env, info[1], "offset");
  if (*offset > length || v.length > length - *offset)
    throw rangeError(std::string(name) + " has " + num(v.length) + " elements, which at offset " + num(*offset) +
                     " do not fit in the set's " + num(length));
  return v;
}

// fp32 → bf16 bits, round to nearest even; NaN stays a (quiet) NaN of its sign, ±Inf stays ±Inf,
// a finite value that rounds past the largest bf16 gives ±Inf (as the device's toBf16Bits).
uint16_t toBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float fromBf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// A bf16 set's elements [offset, offset + n) from or into host fp32, through a bounded host
// buffer of bf16 bits (the set's bytes are 2 per element: offsets are in elements, never floats).
constexpr int64_t kBf16Chunk = int64_t{1} << 20;

void uploadBf16(Backend& backend, const Memory& m, const float* src, int64_t offset, int64_t n) {
  Layers& L = backend.layers();
  std::vector<uint16_t> buf(static_cast<size_t>(std::min(n, kBf16Chunk)));
  auto* base = reinterpret_cast<uint16_t*>(m.data());
  for (int64_t at = 0; at < n; at += kBf16Chunk) {
    const int64_t k = std::min(kBf16Chunk, n - at);
    for (int64_t i = 0; i < k; ++i) buf[static_cast<size_t>(i)] = toBf16(src[at + i]);
    L.upload(base + offset + at, buf.data(), static_cast<size_t>(k) * 2);
    L.download(nullptr, nullptr, 0);  // waits, so buf can be refilled
  }
}

void downloadBf16(Backend& backend, const Memory& m, float* dst, int64_t offset, int64_t n) {
  Layers& L = backend.layers();
  std::vector<uint16_t> buf(static_cast<size_t>(std::min(n, kBf16Chunk)));
  const auto* base = reinterpret_cast<const uint16_t*>(m.data());
  for (int64_t at = 0; at < n; at += kBf16Chunk) {
    const int64_t k = std::min(kBf16Chunk, n - at);
    L.download(buf.data(), base + offset + at, static_cast<size_t>(k) * 2);
    for (int64_t i = 0; i < k; ++i) dst[at + i] = fromBf16(buf[static_cast<size_t>(i)]);
  }
}

}  // namespace

// upload(src, offset = 0): copies src into elements [offset, offset + src.length).
Napi::Value TensorSetWrap::upload(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    live(info.Env(), "TensorSet.upload: the set");
    int64_t offset = 0;
    const F32View src = readHostRange(info, "src", total_, &offset);
    if (bf16_) uploadBf16(*backend_, *mem_, src.data, offset, src.length);
    else backend_->upload(*mem_, src.data, offset, src.length);
    return info.Env().Undefined();
  });
}

// download(dst, offset = 0): copies elements [offset, offset + dst.length) into dst.
Napi::Value TensorSetWrap::download(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    live(info.Env(), "TensorSet.download: the set");
    int64_t offset = 0;
    const F32View dst = readHostRange(info, "dst", total_, &offset);
    if (bf16_) downloadBf16(*backend_, *mem_, dst.data, offset, dst.length);
    else backend_->download(*mem_, dst.data, offset, dst.length);
    return info.Env().Undefined();
  });
}

Napi::Value TensorSetWrap::fill(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    live(info.Env(), "TensorSet.fill: the set");
    const double v = readNumber(info.Env(), info[0], "value");
    if (bf16_) {
      const std::vector<float> same(static_cast<size_t>(std::min(total_, kBf16Chunk)), static_cast<float>(v));
      for (int64_t at = 0; at < total_; at += kBf16Chunk)
        uploadBf16(*backend_, *mem_, same.data(), at, std::min(kBf16Chunk, total_ - at));
    } else {
      backend_->fill(*mem_, static_cast<float>(v));
    }
    return info.Env().Undefined();
  });
}

// Idempotent. An async call in flight keeps what it uses (it holds the shared_ptrs and the array).
Napi::Value TensorSetWrap::dispose(const Napi::CallbackInfo& info) {
  mem_.reset();
  layout_.reset();  // a device layout's tables: freed now unless a set or a call still shares them
  host_.Reset();
  return info.Env().Undefined();
}

}  // namespace craftgrad
