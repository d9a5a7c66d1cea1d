#include "mpi_call.h"

#include <cmath>
#include <string>
#include <vector>

#include "../mpi/mpi_comm.h"
#include "arg_error.h"
#include "js_values.h"
#include "operands.h"
#include "typed_arrays.h"

namespace craftgrad {
namespace {

using Body = Napi::Value (*)(const Napi::CallbackInfo&);

template <Body body>
Napi::Value call(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value { return body(info); });
}

// A JS array of Float32Array (each reduced in turn, in place). Synchronous: nothing to hold.
F32List readSets(const Napi::CallbackInfo& info) {
  Operands ops(info.Env(), nullptr);
  F32List arrays;
  ops.list(info[0], "arrays", Access::Write, arrays);
  return arrays;
}

Napi::Value Init(const Napi::CallbackInfo& info) {
  mpi::init();
  return info.Env().Undefined();
}

Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), mpi::rank()); }
Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), mpi::size()); }

Napi::Value SumInRankOrder(const Napi::CallbackInfo& info) {
  for (const F32View& v : readSets(info)) mpi::sumInRankOrder(v.data, v.length);
  return info.Env().Undefined();
}

int readRoot(Napi::Env env, Napi::Value v) {
  const double r = readNumber(env, v, "root");
  if (!(r >= 0 && r < 1e9) || r != std::floor(r)) throw rangeError("root must be a rank (an integer >= 0), got " + std::to_string(r));
  return static_cast<int>(r);
}

Napi::Value ReduceScatterInRankOrder(const Napi::CallbackInfo& info) {
  for (const F32View& v : readSets(info)) mpi::reduceScatterInRankOrder(v.data, v.length);
  return info.Env().Undefined();
}

Napi::Value AllgatherSegments(const Napi::CallbackInfo& info) {
  for (const F32View& v : readSets(info)) mpi::allgatherSegments(v.data, v.length);
  return info.Env().Undefined();
}

// segment(n, rank, size) -> [start, end): rank's segment of n floats (sumInRankOrder's).
Napi::Value Segment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const double n = readNumber(env, info[0], "n");
  if (!(n >= 0 && n <= 9007199254740991.0) || n != std::floor(n)) throw rangeError("n must be an integer >= 0, got " + std::to_string(n));
  const double p = readNumber(env, info[2], "size");
  if (!(p >= 1 && p < 1e9) || p != std::floor(p)) throw rangeError("size must be an integer >= 1, got " + std::to_string(p));
  const double r = readNumber(env, info[1], "rank");
  if (!(r >= 0 && r < p) || r != std::floor(r)) throw rangeError("rank must be an integer in [0, size), got " + std::to_string(r));
  const int64_t nn = static_cast<int64_t>(n);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t{0}, Napi::Number::New(env, static_cast<double>(mpi::segmentStart(nn, static_cast<int>(r), static_cast<int>(p)))));
  out.Set(uint32_t{1}, Napi::Number::New(env, static_cast<double>(mpi::segmentStart(nn, static_cast<int>(r) + 1, static_cast<int>(p)))));
  return out;
}

// gatherSegments(segment: Float32Array, n, root) -> Float32Array(n) on root, undefined elsewhere.
Napi::Value GatherSegments(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const F32View s = Operands(env, nullptr).array(info[0], "segment", Access::Read);
  const double n = readNumber(env, info[1], "n");
  if (!(n >= 0 && n <= 2147483647.0) || n != std::floor(n)) throw rangeError("n must be an integer from 0 to 2^31 - 1, got " + std::to_string(n));
  const int root = readRoot(env, info[2]);
  if (root >= mpi::size()) throw rangeError("root is " + std::to_string(root) + " but there are " + std::to_string(mpi::size()) + " ranks");
  const bool isRoot = mpi::rank() == root;
  Napi::Float32Array full = isRoot ? Napi::Float32Array::New(env, static_cast<size_t>(n)) : Napi::Float32Array();
  mpi::gatherSegments(s.data, s.length, isRoot ? full.Data() : nullptr, static_cast<int64_t>(n), root);
  if (isRoot) return full;
  return env.Undefined();
}

Napi::Value AllreduceSum(const Napi::CallbackInfo& info) {
  for (const F32View& v : readSets(info)) mpi::allreduceSum(v.data, v.length);
  return info.Env().Undefined();
}

// broadcast(view: any TypedArray, root): root's bytes into every rank's view.
Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray()) throw typeError("data must be a TypedArray, got " + describeValue(env, info[0]));
  const Napi::TypedArray a = info[0].As<Napi::TypedArray>();
  if (a.ArrayBuffer().ByteLength() == 0 && a.ByteLength() > 0) throw typeError("data's buffer is detached");
  const int root = readRoot(env, info[1]);
  if (root >= mpi::size()) throw rangeError("root is " + std::to_string(root) + " but there are " + std::to_string(mpi::size()) + " ranks");
  auto* bytes = static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
  mpi::broadcast(bytes, static_cast<int64_t>(a.ByteLength()), root);
  return env.Undefined();
}

// allgather(values: Float64Array) -> Float64Array of size()·k, rank by rank.
Napi::Value Allgather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw typeError("values must be a Float64Array, got " + describeValue(env, info[0]));
  const Napi::Float64Array v = info[0].As<Napi::Float64Array>();
  const std::vector<double> all = mpi::allgather(v.Data(), static_cast<int64_t>(v.ElementLength()));
  Napi::Float64Array out = Napi::Float64Array::New(env, all.size());
  for (size_t i = 0; i < all.size(); ++i) out[i] = all[i];
  return out;
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  mpi::barrier();
  return info.Env().Undefined();
}

Napi::Value Abort(const Napi::CallbackInfo& info) {
  const double c = readNumber(info.Env(), info[0], "code");
  if (!(c >= 1 && c <= 255) || c != std::floor(c)) throw rangeError("code must be an integer from 1 to 255, got " + std::to_string(c));
  mpi::abort(static_cast<int>(c));
}

Napi::Value Finalize(const Napi::CallbackInfo& info) {
  mpi::finalize();
  return info.Env().Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) { return mpiInfo(info.Env()); }

}  // namespace

Napi::Object mpiInfo(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("compiled", mpi::compiled());
  if (!mpi::compiled()) {
    o.Set("reason", "this build of craftgrad has no MPI support (no MPI implementation was found when it was built)");
    return o;
  }
  o.Set("library", mpi::libraryVersion());
  const bool live = mpi::initialized() && !mpi::finalized();
  o.Set("initialized", live);
  if (live) {
    o.Set("rank", mpi::rank());
    o.Set("size", mpi::size());
  }
  return o;
}

void registerMpiExports(Napi::Env env, Napi::Object exports) {
  Napi::Object m = Napi::Object::New(env);
  m.Set("compiled", mpi::compiled());
  m.Set("info", Napi::Function::New(env, call<Info>, "info"));
  m.Set("init", Napi::Function::New(env, call<Init>, "init"));
  m.Set("rank", Napi::Function::New(env, call<Rank>, "rank"));
  m.Set("size", Napi::Function::New(env, call<Size>, "size"));
  m.Set("sumInRankOrder", Napi::Function::New(env, call<SumInRankOrder>, "sumInRankOrder"));
  m.Set("reduceScatterInRankOrder", Napi::Function::New(env, call<ReduceScatterInRankOrder>, "reduceScatterInRankOrder"));
  m.Set("allgatherSegments", Napi::Function::New(env, call<AllgatherSegments>, "allgatherSegments"));
  m.Set("gatherSegments", Napi::Function::New(env, call<GatherSegments>, "gatherSegments"));
  m.Set("segment", Napi::Function::New(env, call<Segment>, "segment"));
  m.Set("allreduceSum", Napi::Function::New(env, call<AllreduceSum>, "allreduceSum"));
  m.Set("broadcast", Napi::Function::New(env, call<Broadcast>, "broadcast"));
  m.Set("allgather", Napi::Function::New(env, call<Allgather>, "allgather"));
  m.Set("barrier", Napi::Function::New(env, call<Barrier>, "barrier"));
  m.Set("abort", Napi::Function::New(env, call<Abort>, "abort"));
  m.Set("finalize", Napi::Function::New(env, call<Finalize>, "finalize"));
  exports.Set("mpi", m);
}

}  // namespace craftgrad
