#include "operands.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "arg_error.h"
#include "js_values.h"

namespace craftgrad {
namespace {

std::string label(const char* name, int64_t index) {
  return index < 0 ? std::string(name) : std::string(name) + "[" + std::to_string(index) + "]";
}

std::string num(int64_t v) { return std::to_string(v); }

// Fills a Wording template: {x}, {y}, {xv}, {yv}.
std::string fill(const char* text, const std::string& x, const std::string& y, const std::string& xv = std::string(),
                 const std::string& yv = std::string()) {
  std::string out;
  for (const char* p = text; *p != '\0';) {
    if (std::strncmp(p, "{xv}", 4) == 0) out += xv, p += 4;
    else if (std::strncmp(p, "{yv}", 4) == 0) out += yv, p += 4;
    else if (std::strncmp(p, "{x}", 3) == 0) out += x, p += 3;
    else if (std::strncmp(p, "{y}", 3) == 0) out += y, p += 3;
    else out += *p++;
  }
  return out;
}

[[noreturn]] void lengthError(const std::string& x, int64_t have, const std::string& what, int64_t need) {
  throw rangeError(x + " has " + num(have) + " elements but " + what + " needs " + num(need));
}

}  // namespace

Operands::Operands(napi_env env, JsHold* hold, const Wording& words) : env_(env), hold_(hold), words_(words) {}

void Operands::useBackend(Backend& backend, const char* name) {
  backend_ = &backend;
  backendName_ = name;
  backendIndex_ = -1;
}

// Host arrays and sets in host memory share space 0; each device backend has its own.
uint8_t Operands::spaceOf(const TensorSetWrap* w) {
  const Backend* b = &w->backend();
  if (b->hostMemory()) return 0;
  for (size_t i = 0; i < devices_.size(); ++i)
    if (devices_[i] == b) return static_cast<uint8_t>(i + 1);
  if (devices_.size() >= 255) throw std::length_error("craftgrad: more than 255 devices in one call");
  devices_.push_back(b);
  return static_cast<uint8_t>(devices_.size());
}

void Operands::keepBuffer(napi_value buffer) {
  if (hold_) hold_->buffer(buffer);
}

// A list's tensors are usually views of one buffer (a GradSet's, or one allocation): kept once.
void Operands::keepBuffer(const F32View& view) {
  if (!hold_ || (view.bufferData != nullptr && view.bufferData == lastBuffer_)) return;
  hold_->buffer(view.arrayBuffer);
  lastBuffer_ = view.bufferData;
}

void Operands::record(const char* name, int64_t index, Access access, uint8_t space, const TensorSetWrap* set) {
  operands_.push_back(Operand{name, index, access, space, set, static_cast<uint32_t>(ranges_.size()), 0});
}

void Operands::addRange(const void* data, int64_t floats, int64_t index) {
  addByteRange(data, floats * static_cast<int64_t>(sizeof(float)), index);
}

void Operands::addByteRange(const void* data, int64_t bytes, int64_t index) {
  if (bytes <= 0 || data == nullptr) return;  // an empty range overlaps nothing
  const auto begin = reinterpret_cast<uintptr_t>(data);
  Operand& o = operands_.back();
  ranges_.push_back(Range{begin, begin + static_cast<uintptr_t>(bytes), index, static_cast<uint32_t>(operands_.size() - 1),
                          o.access, o.space});
  ++o.rangeCount;
}

TensorSetWrap* Operands::anySet(napi_value v, const char* name) {
  TensorSetWrap* w = TensorSetWrap::unwrap(env_, Napi::Value(env_, v), name, -1, true);
  if (!backend_) {
    backend_ = &w->backend();
    backendName_ = name;
    backendIndex_ = -1;
  }
  record(name, -1, Access::Read, spaceOf(w), w);
  addByteRange(w->data(), w->byteLength(), -1);
  keepBuffer(w->hostBuffer());
  if (hold_) hold_->memory.push_back(w->memory());
  return w;
}

TensorSetWrap* Operands::set(napi_value v, const char* name, Access access, int64_t index) {
  TensorSetWrap* w = TensorSetWrap::unwrap(env_, Napi::Value(env_, v), name, index);
  if (!backend_) {
    backend_ = &w->backend();
    backendName_ = name;
    backendIndex_ = index;
  }
  record(name, index, access, spaceOf(w), w);
  addRange(w->data(), w->length(), index);
  keepBuffer(w->hostBuffer());
  if (hold_) hold_->memory.push_back(w->memory());
  return w;
}

TensorSetWrap* Operands::set(napi_value v, const char* name, Access access, Need need) {
  TensorSetWrap* w = set(v, name, access);
  if (w->length() != need.elements) lengthError(name, w->length(), need.what, need.elements);
  requireBackend(w, name);
  return w;
}

F32View Operands::array(napi_value v, const char* name, Access access, int64_t index) {
  const F32View f = readFloat32Array(env_, v, name, index);
  record(name, index, access, 0, nullptr);
  addRange(f.data, f.length, index);
  keepBuffer(f);
  return f;
}

F32View Operands::array(napi_value v, const char* name, Access access, Need need, int64_t index) {
  const F32View f = readFloat32Array(env_, v, name, index);
  if (f.length != need.elements) lengthError(label(name, index), f.length, need.what, need.elements);
  record(name, index, access, 0, nullptr);
  addRange(f.data, f.length, index);
  keepBuffer(f);
  return f;
}

I32View Operands::int32Array(napi_value v, const char* name, Access access, Need need) {
  const I32View a = readInt32Array(env_, v, name);
  if (a.length != need.elements) lengthError(name, a.length, need.what, need.elements);
  record(name, -1, access, 0, nullptr);
  addRange(a.data, a.length, -1);  // int32 and float32 elements are both 4 bytes
  keepBuffer(a.arrayBuffer);
  return a;
}

void Operands::list(napi_value v, const char* name, Access access, F32List& out) {
  bool isArray = false;
  checkStatus(env_, napi_is_array(env_, v, &isArray));
  if (!isArray) throw typeError(std::string(name) + " must be an Array of Float32Array, got " + describeValue(env_, v));
  uint32_t count = 0;
  checkStatus(env_, napi_get_array_length(env_, v, &count));
  out.clear();
  out.reserve(count);
  record(name, -1, access, 0, nullptr);
  ranges_.reserve(ranges_.size() + count);
  for (uint32_t i = 0; i < count; ++i) {
    napi_value element;
    checkStatus(env_, napi_get_element(env_, v, i, &element));
    const F32View& f = out.emplace_back(readFloat32Array(env_, element, name, i));
    addRange(f.data, f.length, i);
    keepBuffer(f);
  }
}

void Operands::requireBackend(const TensorSetWrap* set, const char* name, int64_t index) const {
  if (&set->backend() != backend_) {
    throw rangeError(fill(words_.device, label(name, index), label(backendName_, backendIndex_), set->backend().name(),
                          backend_->name()));
  }
}

void Operands::requireSetsLike(const TensorSetWrap* ref) const {
  const Operand* r = nullptr;
  for (const Operand& o : operands_)
    if (o.set == ref) {
      r = &o;
      break;
    }
  if (!r) return;
  for (const Operand& o : operands_) {
    if (!o.set || &o == r) continue;
    const TensorSetWrap* w = o.set;
    if (&w->backend() != &ref->backend())
      throw rangeError(fill(words_.device, label(o.name, o.index), label(r->name, r->index), w->backend().name(),
                            ref->backend().name()));
    if (w->length() != ref->length())
      throw rangeError(label(o.name, o.index) + " has " + num(w->length()) + " elements but " + label(r->name, r->index) +
                       " has " + num(ref->length()));
    if (!w->layout()->sameSizes(*ref->layout()))
      throw rangeError(fill(words_.sizes, label(o.name, o.index), label(r->name, r->index)));
  }
}

void Operands::requireSameLength(const F32View& x, const char* name, const F32View& ref, const char* refName) const {
  if (x.length != ref.length)
    throw rangeError(std::string(name) + " has " + num(x.length) + " elements but " + refName + " has " + num(ref.length));
}

void Operands::requireListLike(const F32List& x, const char* name, const F32List& ref, const char* refName) const {
  if (x.size() != ref.size())
    throw rangeError(std::string(name) + " has " + num(x.size()) + " tensors but " + refName + " has " + num(ref.size()));
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].length != ref[i].length)
      throw rangeError(label(name, i) + " has " + num(x[i].length) + " elements but " + label(refName, i) + " has " +
                       num(ref[i].length));
}

void Operands::narrow(const char* name, int64_t offset, int64_t count) {
  for (Operand& o : operands_) {
    if (std::strcmp(o.name, name) != 0 || o.rangeCount != 1) continue;
    Range& r = ranges_[o.firstRange];
    r.begin += static_cast<uintptr_t>(offset) * sizeof(float);
    r.end = r.begin + static_cast<uintptr_t>(count) * sizeof(float);
    return;
  }
}

// By memory space, then address; equal ranges in the order their operands were read.
bool Operands::lessRange(const Range& x, const Range& y) const {
  if (x.space != y.space) return x.space < y.space;
  if (x.begin != y.begin) return x.begin < y.begin;
  if (x.end != y.end) return x.end < y.end;
  if (x.operand != y.operand) return x.operand < y.operand;
  return x.index < y.index;
}

// A few ranges: insertion sort, in place. Many (a surgery over thousands of tensors): each
// operand's ranges are usually in address order already (one buffer per list), and the
// buffers apart, so putting whole runs in order (rotations, in place) sorts them in O(n);
// runs that interleave are merged, and unsorted ones sorted.
void Operands::sortRanges() {
  const auto less = [this](const Range& x, const Range& y) { return lessRange(x, y); };
  Range* r = ranges_.data();
  const size_t n = ranges_.size();
  if (n <= 16) {
    for (size_t i = 1; i < n; ++i)
      for (size_t j = i; j > 0 && less(r[j], r[j - 1]); --j) std::swap(r[j], r[j - 1]);
    return;
  }
  for (const Operand& o : operands_) {
    if (!std::is_sorted(r + o.firstRange, r + o.firstRange + o.rangeCount, less)) {
      std::sort(r, r + n, less);
      return;
    }
  }
  // The runs, by their first range (insertion: a run moves below those that start after it).
  InlineVector<std::pair<size_t, size_t>, 6> runs;  // [begin, end) in r
  for (const Operand& o : operands_) {
    if (o.rangeCount == 0) continue;
    size_t begin = o.firstRange, end = o.firstRange + o.rangeCount;
    size_t at = runs.size();
    while (at > 0 && less(r[begin], r[runs[at - 1].first])) --at;
    if (at < runs.size()) {
      const size_t to = runs[at].first, len = end - begin;
      std::rotate(r + to, r + begin, r + end);
      for (size_t k = at; k < runs.size(); ++k) runs[k].first += len, runs[k].second += len;
      begin = to, end = to + len;
    }
    runs.push_back({begin, end});
    for (size_t k = runs.size() - 1; k > at; --k) std::swap(runs[k], runs[k - 1]);
  }
  bool apart = true;  // each run sorted: the whole is when each run ends before the next begins
  for (size_t k = 1; k < runs.size() && apart; ++k) apart = !less(r[runs[k].first], r[runs[k - 1].second - 1]);
  if (apart) return;
  for (size_t k = 1; k < runs.size(); ++k) std::inplace_merge(r, r + runs[k].first, r + runs[k].second, less);
}

// One sweep in address order. Equal ranges form a group: it is fine with no written range,
// or with one whose operand is written in place and every other member a read of the same
// tensor index (exact aliasing). Distinct groups that overlap are forbidden when either
// holds a written range.
void Operands::requireDisjoint() {
  if (ranges_.size() < 2) return;
  sortRanges();
  const Range* r = ranges_.data();
  const size_t n = ranges_.size();
  auto written = [](const Range& x) { return x.access != Access::Read; };
  auto space = [](const Range& x) { return x.space; };
  const Range* maxEndAny = nullptr;  // the previous group reaching furthest
  const Range* maxEndW = nullptr;    // the previous written group reaching furthest
  size_t i = 0;
  while (i < n) {
    if (r[i].begin == r[i].end) {  // narrowed to nothing
      ++i;
      continue;
    }
    if (i > 0 && space(r[i]) != space(r[i - 1])) maxEndAny = maxEndW = nullptr;
    size_t j = i;
    const Range* w = nullptr;
    while (j < n && r[j].begin == r[i].begin && r[j].end == r[i].end && space(r[j]) == space(r[i])) {
      if (written(r[j])) {
        if (w) overlapError(*w, r[j]);
        w = &r[j];
      }
      ++j;
    }
    if (w) {
      const bool inPlace = w->access == Access::WriteInPlace;
      for (size_t g = i; g < j; ++g)
        if (&r[g] != w && !(inPlace && r[g].index == w->index)) overlapError(*w, r[g]);
    }
    const Range& head = w ? *w : r[i];
    if (w && maxEndAny && maxEndAny->end > head.begin) overlapError(*maxEndAny, head);
    if (!w && maxEndW && maxEndW->end > head.begin) overlapError(*maxEndW, head);
    if (!maxEndAny || head.end > maxEndAny->end) maxEndAny = &head;
    if (w && (!maxEndW || head.end > maxEndW->end)) maxEndW = &head;
    i = j;
  }
}

void Operands::overlapError(const Range& x, const Range& y) const {
  const Range* first = &x;
  const Range* second = &y;
  if (!words_.overlapByAddress) {
    const bool wx = x.access != Access::Read, wy = y.access != Access::Read;
    const bool yFirst = (wy && !wx) || (wx && wy && (y.operand < x.operand || (y.operand == x.operand && y.index < x.index)));
    if (yFirst) std::swap(first, second);
  }
  throw rangeError(fill(words_.overlap, label(operands_[first->operand].name, first->index),
                        label(operands_[second->operand].name, second->index)));
}

}  // namespace craftgrad
