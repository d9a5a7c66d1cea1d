// TensorSet: the binding's one handle on a set of tensors packed back to back in one
// backend's memory (host memory for 'cpu': a Float32Array wrapped without a copy; device
// memory for 'cuda:N'). Elements are fp32, or bf16 on a device (dtype 'bf16': 2 bytes each,
// frozen base weights stored at half the memory; uploads round to nearest even, downloads
// widen exactly). Only a model step's `frozen` operand reads a bf16 set (Operands::anySet):
// every other operand refuses one with a TypeError naming it and its dtype (unwrap), so no
// fp32 reader ever sees 2-byte elements. Every operation takes the backend from its operands'
// handles. The handle holds its memory and layout by shared_ptr, so an in-flight async
// call keeps them alive even if JS disposes or drops the handle meanwhile. Instances carry
// an N-API type tag, so a foreign object is rejected with a TypeError, never unwrapped.
//
//   new TensorSet({ device: 'cpu' | 'cuda:N', sizes?: ArrayLike<number>, like?: TensorSet,
//                   data?: Float32Array, dtype?: 'fp32' | 'bf16' })   zeros (or, on the CPU,
//                   `data` itself); bf16 only on a device (RangeError naming dtype)
//   new TensorSet({ view: TensorSet, offset, sizes })   a part of another (fp32) set, no copy
//   .device .dtype .length (elements) .byteLength .numTensors .disposed
//   .data (the Float32Array of a 'cpu' set)
//   .upload(src, offset = 0) .download(dst, offset = 0) .fill(value) .dispose()
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "../core/backend.h"

namespace craftgrad {

class Options;  // options.h

class TensorSetWrap : public Napi::ObjectWrap<TensorSetWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  // A new set of `layout` on `backend`: uninitialised device memory, or a fresh (zero)
  // Float32Array on the host.
  static Napi::Object create(Napi::Env env, Backend& backend, std::shared_ptr<Layout> layout);
  static bool is(Napi::Env env, Napi::Value v);
  // Checks type, tag, liveness and (host sets) that the array is not detached; `name` is
  // the argument ("act", "out"; with `index`, "sets[3]"), formatted only for an error.
  // TypeError otherwise. Operations read their operands through operands.h, which calls this.
  // A bf16 set is a TypeError naming the operand and its dtype unless `allowBf16`.
  static TensorSetWrap* unwrap(Napi::Env env, Napi::Value v, const char* name, int64_t index = -1,
                               bool allowBf16 = false);

  explicit TensorSetWrap(const Napi::CallbackInfo& info);

  Backend& backend() const { return *backend_; }
  const std::shared_ptr<Memory>& memory() const { return mem_; }
  const std::shared_ptr<Layout>& layout() const { return layout_; }
  // The elements' bytes (bf16: 2-byte elements; the Memory then holds ⌈length/2⌉ floats).
  float* data() const { return mem_->data(); }
  // Elements (fp32 or bf16), not floats of storage.
  int64_t length() const { return total_; }
  bool bf16() const { return bf16_; }
  int64_t byteLength() const { return total_ * (bf16_ ? 2 : 4); }
  // The ArrayBuffer behind a host set (to keep alive while an async call runs), else null.
  napi_value hostBuffer() const { return hostBuffer_; }

 private:
  Napi::Value deviceName(const Napi::CallbackInfo& info);
  Napi::Value lengthValue(const Napi::CallbackInfo& info);
  Napi::Value dtypeValue(const Napi::CallbackInfo& info);
  Napi::Value byteLengthValue(const Napi::CallbackInfo& info);
  Napi::Value numTensors(const Napi::CallbackInfo& info);
  Napi::Value disposed(const Napi::CallbackInfo& info);
  Napi::Value hostData(const Napi::CallbackInfo& info);
  Napi::Value upload(const Napi::CallbackInfo& info);
  Napi::Value download(const Napi::CallbackInfo& info);
  Napi::Value fill(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  void init(Napi::Env env, Backend& backend, std::shared_ptr<Layout> layout, Napi::Value data, bool zero);
  void initView(Napi::Env env, const Options& o);
  void live(Napi::Env env, const char* name, int64_t index = -1);

  Backend* backend_ = nullptr;
  std::shared_ptr<Memory> mem_;
  std::shared_ptr<Layout> layout_;
  Napi::Reference<Napi::Value> host_;  // the Float32Array of a host set
  napi_value hostBuffer_ = nullptr;    // valid during the call that unwrapped this set
  int64_t total_ = 0, count_ = 0;      // kept after dispose()
  bool bf16_ = false;                  // 2-byte bf16 elements (device sets only)
};

}  // namespace craftgrad
