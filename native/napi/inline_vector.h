// A vector whose first N elements live inside it: the binding's per-call lists (a call's
// operands, its tensors, the buffers it keeps alive) hold one to a few entries on the
// common path, where std::vector's heap allocation and free would cost more than the
// call's arithmetic (bench/surgery-call.js). Past N it moves to the heap, like a vector,
// in blocks that its thread keeps for the next call (BlockCache).
#pragma once
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace craftgrad {

// Large heap blocks, kept per thread for the next call. A call over thousands of tensors
// builds a few lists of hundreds of KB; freed, malloc gives such blocks back to the system
// (trim, munmap) and the next call faults every page in again, which cost as much as
// reading the tensors. A block is taken out while a list uses it, so calls that nest (a JS
// getter calling the binding) never share one. Holds at most kSlots blocks, the largest seen.
class BlockCache {
 public:
  static constexpr size_t kMinBytes = size_t{64} << 10, kSlots = 8;

  static BlockCache& local() {
    thread_local BlockCache cache;
    return cache;
  }
  ~BlockCache() {
    for (size_t i = 0; i < kSlots; ++i) ::operator delete(block_[i]);
  }
  // A block of at least `bytes` (its size in *got).
  void* take(size_t bytes, size_t* got) {
    if (bytes >= kMinBytes) {
      size_t best = kSlots;
      for (size_t i = 0; i < kSlots; ++i)
        if (block_[i] && size_[i] >= bytes && (best == kSlots || size_[i] < size_[best])) best = i;
      if (best < kSlots) {
        void* p = block_[best];
        *got = size_[best];
        block_[best] = nullptr;
        return p;
      }
    }
    *got = bytes;
    return ::operator new(bytes);
  }
  void give(void* p, size_t bytes) {
    if (bytes >= kMinBytes) {
      // An empty slot, else the one holding the smallest block: kept if this one is larger.
      size_t slot = 0;
      for (size_t i = 0; i < kSlots; ++i) {
        if (!block_[i]) {
          slot = i;
          break;
        }
        if (size_[i] < size_[slot]) slot = i;
      }
      if (!block_[slot] || size_[slot] < bytes) {
        std::swap(p, block_[slot]);
        std::swap(bytes, size_[slot]);
      }
    }
    ::operator delete(p);  // no-op for nullptr
  }

 private:
  void* block_[kSlots] = {};
  size_t size_[kSlots] = {};
};

template <typename T, size_t N>
class InlineVector {
  static_assert(N > 0, "an InlineVector holds at least one element inline");
  static_assert(alignof(T) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__, "heap blocks come from operator new");

 public:
  InlineVector() = default;
  ~InlineVector() {
    clear();
    release();
  }
  InlineVector(InlineVector&& o) noexcept(std::is_nothrow_move_constructible_v<T>) { take(o); }
  InlineVector& operator=(InlineVector&& o) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this != &o) {
      clear();
      release();
      take(o);
    }
    return *this;
  }
  InlineVector(const InlineVector&) = delete;
  InlineVector& operator=(const InlineVector&) = delete;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  T& back() { return data_[size_ - 1]; }

  template <typename... Args>
  T& emplace_back(Args&&... args) {
    if (size_ == capacity_) grow(capacity_ * 2);
    T* p = new (data_ + size_) T(std::forward<Args>(args)...);
    ++size_;
    return *p;
  }
  void push_back(T v) { emplace_back(std::move(v)); }
  void reserve(size_t n) {
    if (n > capacity_) grow(n);
  }
  // New elements are value-initialised (zeros for arithmetic types and plain structs).
  void resize(size_t n) {
    reserve(n);
    while (size_ < n) new (data_ + size_++) T();
    while (size_ > n) data_[--size_].~T();
  }
  void clear() {
    while (size_ > 0) data_[--size_].~T();
  }

 private:
  T* inlineData() { return reinterpret_cast<T*>(inline_); }

  void grow(size_t n) {
    size_t bytes = 0;
    T* fresh = static_cast<T*>(BlockCache::local().take(n * sizeof(T), &bytes));
    for (size_t i = 0; i < size_; ++i) {
      new (fresh + i) T(std::move(data_[i]));
      data_[i].~T();
    }
    release();
    data_ = fresh;
    capacity_ = bytes / sizeof(T);
  }
  // Back to the inline storage (the heap block, if any, to the thread's cache).
  void release() {
    if (data_ != inlineData()) BlockCache::local().give(data_, capacity_ * sizeof(T));
    data_ = inlineData();
    capacity_ = N;
  }
  // Takes o's elements (its heap block, or moves its inline ones); o is left empty and inline.
  void take(InlineVector& o) {
    if (o.data_ != o.inlineData()) {
      data_ = o.data_;
      capacity_ = o.capacity_;
      size_ = o.size_;
    } else {
      for (size_t i = 0; i < o.size_; ++i) {
        new (data_ + i) T(std::move(o.data_[i]));
        o.data_[i].~T();
      }
      size_ = o.size_;
    }
    o.data_ = o.inlineData();
    o.capacity_ = N;
    o.size_ = 0;
  }

  alignas(T) unsigned char inline_[N * sizeof(T)];
  T* data_ = inlineData();
  size_t size_ = 0, capacity_ = N;
};

}  // namespace craftgrad
