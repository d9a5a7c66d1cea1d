// The operations every backend implements, declared once (native/cpu: CpuBackend,
// native/cuda: the CUDA backend). The binding (native/napi) parses and checks a call, takes
// the backend from the operands' tensor-set handle, and calls one of these; it never names
// a backend's own functions. No N-API and no CUDA here.
//
// Memory: a backend computes on Memory it can address: host memory for the CPU (JS-owned
// Float32Arrays, wrapped without a copy), device memory for CUDA. Pointers passed to the
// operations below are into such memory, checked by the caller (lengths, devices, aliasing)
// before any call: implementations may assume valid arguments.
//
// Errors: a backend throws BackendError (backend_error.h) or std::bad_alloc; the binding
// turns them into the same JS error for the synchronous and the asynchronous call.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "adamw_params.h"
#include "communicator.h"
#include "layers.h"
#include "numerics.h"
#include "tensor_span.h"

namespace craftgrad {

// One flat range of floats in a backend's memory.
class Memory {
 public:
  virtual ~Memory() = default;
  virtual float* data() const = 0;
  virtual int64_t length() const = 0;
};

// Host memory the backend does not own (a Float32Array's bytes, kept alive by the binding).
class HostSpan final : public Memory {
 public:
  HostSpan(float* data, int64_t length) : data_(data), length_(length) {}
  float* data() const override { return data_; }
  int64_t length() const override { return length_; }

 private:
  float* data_;
  int64_t length_;
};

// A contiguous part of another Memory (a rank's segment of a set: the sharded data-parallel
// step), keeping it alive. Operations see it as any Memory of its backend.
class MemoryView final : public Memory {
 public:
  MemoryView(std::shared_ptr<Memory> parent, int64_t offset, int64_t length)
      : parent_(std::move(parent)), offset_(offset), length_(length) {}
  float* data() const override { return parent_->data() + offset_; }
  int64_t length() const override { return length_; }

 private:
  std::shared_ptr<Memory> parent_;
  int64_t offset_, length_;
};

// Tensor sizes packed back to back in one Memory. A backend may subclass it to cache what
// it needs per layout (CUDA: the chunk table and per-call scratch on the device).
class Layout {
 public:
  explicit Layout(std::vector<int64_t> sizes);
  virtual ~Layout() = default;
  const std::vector<int64_t>& sizes() const { return sizes_; }
  int64_t count() const { return static_cast<int64_t>(sizes_.size()); }
  int64_t total() const { return total_; }
  bool sameSizes(const Layout& o) const { return this == &o || sizes_ == o.sizes_; }

 private:
  std::vector<int64_t> sizes_;
  int64_t total_ = 0;
};


// c = beta·c + alpha·op(a)·op(b) on host arrays, row-major (a: M×K or K×M when transA).
struct GemmCall {
  int64_t M = 0, N = 0, K = 0;
  float alpha = 1, beta = 0;
  const float* a = nullptr;
  const float* b = nullptr;
  float* c = nullptr;
  bool transA = false, transB = false;
  int variant = 0;  // CUDA's product kernel (0 by shape; cuda/tuning.h); the CPU has one
  GemmPrecision precision = GemmPrecision::Fp32;  // Bf16: CUDA only (the binding refuses it on the CPU)
};

class Backend {
 public:
  virtual ~Backend() = default;
  // "cpu" or "cuda:N": how errors and results name the device.
  virtual const std::string& name() const = 0;
  // True when Memory::data() is host-addressable (the binding then wraps Float32Arrays).
  virtual bool hostMemory() const = 0;

  // ---- memory ----
  // `length` uninitialised floats (throws BackendError or std::bad_alloc when out of memory).
  virtual std::shared_ptr<Memory> allocate(int64_t length) = 0;
  virtual std::shared_ptr<Layout> layout(std::vector<int64_t> sizes) = 0;
  virtual void upload(Memory& m, const float* src, int64_t offset, int64_t count) = 0;
  virtual void download(const Memory& m, float* dst, int64_t offset, int64_t count) = 0;
  virtual void fill(Memory& m, float value) = 0;
  // dst[0..n) = src[0..n), both in this backend's memory, not overlapping.
  virtual void copy(float* dst, const float* src, int64_t n) = 0;

  // ---- the surgery (numerics.h) over a laid-out set: out may equal a or r exactly ----
  virtual void surgery(Layout& l, const float* a, const float* r, float* out, const SurgeryParams& p,
                       TensorStats* stats) = 0;
  // The surgery on host tensors of any shape of list (a device backend stages them).
  virtual void surgeryHost(const HostTensor* tensors, int64_t count, const SurgeryParams& p, TensorStats* stats) = 0;
  // Pass 1 alone (the CRaFT reduce): per-tensor sums, nothing written; a may equal r.
  virtual void reduce(Layout& l, const float* a, const float* r, ReduceSums* sums) = 0;

  // ---- AdamW (adamw_params.h): p, m, v distinct, none of them read as a gradient ----
  // Pass 2 of the surgery fused with AdamW: g_i = fma(c_i, r, a)·gradScale, c_i = float(coefficients[i]).
  virtual void adamwFused(Layout& l, const float* a, const float* r, const double* coefficients, float* p, float* m,
                          float* v, const AdamWParams& hp) = 0;
  // AdamW alone with g = grad·gradScale.
  virtual void adamw(Layout& l, const float* grad, float* p, float* m, float* v, const AdamWParams& hp) = 0;

  // ---- the layers models are made of (layers.h), on this backend's memory. The models
  // themselves are drivers written once over them (native/models), which the binding
  // calls with this backend's layers: no backend has a model of its own. ----
  virtual Layers& layers() = 0;
  // The model's matrix product on host arrays (tests and benchmarks).
  virtual void gemmHost(const GemmCall& g) = 0;

  // ---- multi-process: this rank's member of a group reducing sets in this backend's
  // memory (communicator.h). Collective: every rank of the group calls it with the same id.
  // The default throws (the CPU's sets use MPI, native/mpi). ----
  virtual std::unique_ptr<Communicator> communicator(const CommunicatorInit& init);
};

}  // namespace craftgrad
