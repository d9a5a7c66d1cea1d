// A vector whose first N elements live inside it: the binding's per-call lists (a call's
// operands, its tensors, the buffers it keeps alive) hold one to a few entries on the
// common path, where std::vector's heap allocation and free would cost more than the
// call's arithmetic (bench/surgery-call.js). Past N it moves to the heap, like a vector.
#pragma once
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace craftgrad {

template <typename T, size_t N>
class InlineVector {
  static_assert(N > 0, "an InlineVector holds at least one element inline");

 public:
  InlineVector() = default;
  ~InlineVector() {
    clear();
    if (data_ != inlineData()) ::operator delete(data_);
  }
  InlineVector(InlineVector&& o) noexcept(std::is_nothrow_move_constructible_v<T>) { take(o); }
  InlineVector& operator=(InlineVector&& o) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (this != &o) {
      clear();
      if (data_ != inlineData()) ::operator delete(data_);
      data_ = inlineData();
      capacity_ = N;
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
    T* fresh = static_cast<T*>(::operator new(n * sizeof(T)));
    for (size_t i = 0; i < size_; ++i) {
      new (fresh + i) T(std::move(data_[i]));
      data_[i].~T();
    }
    if (data_ != inlineData()) ::operator delete(data_);
    data_ = fresh;
    capacity_ = n;
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
