// The operand reader: the one place the binding reads and checks the memory operands of a
// call (TensorSets, host Float32Arrays and Int32Arrays, lists of Float32Array), before any
// kernel runs. An operation declares each operand as it reads it: its name (as the user
// sees it: "act", "options.out" is "out", "frozen.layers" with index 3 is "frozen.layers[3]"),
// whether the call reads or writes it, and what it must match (a needed length, the call's
// backend, a reference operand). The reader checks
//   - presence and type: TypeError naming the operand (a TensorSet that is live and whose
//     array is not detached; a Float32Array or Int32Array whose buffer is not detached);
//   - lengths and backends: RangeError naming the operand and what it must match;
//   - aliasing, once every operand is read (requireDisjoint): a written operand overlaps no
//     other operand, except that an operand written in place (Access::WriteInPlace, the
//     surgery's out) may be exactly one of the read operands' tensors, tensor by tensor;
// and keeps what an asynchronous call needs alive (JsHold: host ArrayBuffers, the sets'
// native memory).
//
// The messages predate the reader and tests pin them, so a call gives its family's words
// (Wording); the checks themselves are the same for every call. No heap allocation while
// a call has a few operands of one tensor each (bench/surgery-call.js).
#pragma once
#include <napi.h>

#include <cstdint>

#include "inline_vector.h"
#include "op_call.h"
#include "tensor_set.h"
#include "typed_arrays.h"

namespace craftgrad {

enum class Access : uint8_t {
  Read,
  Write,         // overlaps no other operand
  WriteInPlace,  // overlaps no other operand except exactly a read operand's same tensor
};

// The words of a call's RangeErrors, as templates: {x} the operand, {y} the operand or thing
// it is compared with, {xv} and {yv} their values (device names). Only formatted on error.
struct Wording {
  // A set on another backend than the call's.
  const char* device = "{x} is on {xv} but {y} is on {yv}";
  // A set whose tensor sizes differ from the reference's (requireSetsLike).
  const char* sizes = "{x} does not have the tensor sizes of {y}";
  // Two operands that overlap (requireDisjoint).
  const char* overlap = "{x} and {y} overlap in memory";
  // The order of the pair in the overlap message: false names the written operand first
  // (of two written ones, the one read first); true names them in the order the address
  // sweep meets them (the surgery's historical order).
  bool overlapByAddress = false;
};

// An expected length: "<name> has <n> elements but <what> needs <elements>".
struct Need {
  int64_t elements;
  const char* what;
};

using F32List = InlineVector<F32View, 4>;

class Operands {
 public:
  // `hold` keeps the host buffers and native memory of what is read (null: nothing kept,
  // for calls that finish before they return and read nothing they must keep).
  Operands(napi_env env, JsHold* hold, const Wording& words = Wording());
  Operands(const Operands&) = delete;
  Operands& operator=(const Operands&) = delete;

  // ---- the call's backend: the first set's, unless given first (host arrays: options.device)
  void useBackend(Backend& backend, const char* name);
  Backend* backend() const { return backend_; }

  // ---- reading: presence and type (TypeError naming the operand), memory recorded
  // A live TensorSet; with `need`, also its length and the call's backend (checked at once).
  TensorSetWrap* set(napi_value v, const char* name, Access access, int64_t index = -1);
  TensorSetWrap* set(napi_value v, const char* name, Access access, Need need);
  // A live TensorSet of either dtype (fp32 or bf16: a model step's frozen weights, read only);
  // its memory recorded by bytes. Every other reader refuses a bf16 set (TensorSetWrap::unwrap).
  TensorSetWrap* anySet(napi_value v, const char* name);
  // A Float32Array (in host memory); with `need`, also its length.
  F32View array(napi_value v, const char* name, Access access, int64_t index = -1);
  F32View array(napi_value v, const char* name, Access access, Need need, int64_t index = -1);
  // An Int32Array (in host memory) of `need` elements.
  I32View int32Array(napi_value v, const char* name, Access access, Need need);
  // An Array of Float32Array, each a tensor of the operand ("act[3]").
  void list(napi_value v, const char* name, Access access, F32List& out);

  // ---- checks against other operands (RangeError in the call's words)
  // `set` is on the call's backend.
  void requireBackend(const TensorSetWrap* set, const char* name, int64_t index = -1) const;
  // Every set read so far but `ref` is like it: same backend, length and tensor sizes.
  void requireSetsLike(const TensorSetWrap* ref) const;
  // `x` has `ref`'s length ("<x> has n elements but <ref> has m").
  void requireSameLength(const F32View& x, const char* name, const F32View& ref, const char* refName) const;
  // The list `x` has `ref`'s count and, tensor by tensor, its lengths.
  void requireListLike(const F32List& x, const char* name, const F32List& ref, const char* refName) const;
  // Narrows the memory recorded for the operand `name` to `count` elements from `offset`
  // (in range: the caller checked), for a call that reads or writes part of a set (copy).
  void narrow(const char* name, int64_t offset, int64_t count);
  // No written operand overlaps another one (but WriteInPlace's exact aliasing). Once, last:
  // it reorders what narrow() finds. Of several overlapping pairs, the one met first in
  // address order is named.
  void requireDisjoint();

 private:
  struct Operand {
    const char* name;
    int64_t index;  // for the label name[index]; -1 for none
    Access access;
    uint8_t space;  // 0: host memory; else the number of a device backend (devices_)
    const TensorSetWrap* set;  // for requireSetsLike
    uint32_t firstRange, rangeCount;
  };
  struct Range {
    uintptr_t begin, end;  // bytes [begin, end)
    int64_t index;         // the tensor's index in a list; -1 otherwise
    uint32_t operand;
    Access access;  // the operand's access and memory space, copied here for the sort and
    uint8_t space;  // the sweep
  };

  void record(const char* name, int64_t index, Access access, uint8_t space, const TensorSetWrap* set);
  void addRange(const void* data, int64_t floats, int64_t index);
  void addByteRange(const void* data, int64_t bytes, int64_t index);
  void keepBuffer(napi_value buffer);
  void keepBuffer(const F32View& view);
  uint8_t spaceOf(const TensorSetWrap* w);
  bool lessRange(const Range& x, const Range& y) const;
  void sortRanges();
  [[noreturn]] void overlapError(const Range& x, const Range& y) const;

  napi_env env_;
  JsHold* hold_;
  Wording words_;
  Backend* backend_ = nullptr;
  const char* backendName_ = nullptr;  // the operand (or thing) that gave the backend
  const void* lastBuffer_ = nullptr;   // the bytes of the buffer kept last (views of one buffer: kept once)
  int64_t backendIndex_ = -1;
  InlineVector<Operand, 6> operands_;
  InlineVector<const Backend*, 2> devices_;  // the device backends met, numbered from 1
  InlineVector<Range, 6> ranges_;
};

}  // namespace craftgrad
