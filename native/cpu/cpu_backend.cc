#include "cpu_backend.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../core/backend_error.h"
#include "adamw_cpu.h"
#include "gemm.h"
#include "layers_cpu.h"
#include "surgery_cpu.h"

namespace craftgrad {
namespace {

class OwnedHostMemory final : public Memory {
 public:
  explicit OwnedHostMemory(int64_t length) : data_(static_cast<size_t>(length)), length_(length) {}
  float* data() const override { return const_cast<float*>(data_.data()); }
  int64_t length() const override { return length_; }

 private:
  std::vector<float> data_;
  int64_t length_;
};

// Host tensors of a laid-out set: tensor i at the sum of the sizes before it.
std::vector<HostTensor> spans(const Layout& l, const float* a, const float* r, float* out) {
  std::vector<HostTensor> t(static_cast<size_t>(l.count()));
  int64_t off = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    const int64_t n = l.sizes()[i];
    t[i] = {a + off, r + off, out ? out + off : nullptr, n};
    off += n;
  }
  return t;
}

class CpuBackend final : public Backend {
 public:
  const std::string& name() const override { return name_; }
  bool hostMemory() const override { return true; }

  std::shared_ptr<Memory> allocate(int64_t length) override { return std::make_shared<OwnedHostMemory>(length); }
  std::shared_ptr<Layout> layout(std::vector<int64_t> sizes) override {
    return std::make_shared<Layout>(std::move(sizes));
  }
  void upload(Memory& m, const float* src, int64_t offset, int64_t count) override {
    if (count > 0) std::memmove(m.data() + offset, src, static_cast<size_t>(count) * sizeof(float));
  }
  void download(const Memory& m, float* dst, int64_t offset, int64_t count) override {
    if (count > 0) std::memmove(dst, m.data() + offset, static_cast<size_t>(count) * sizeof(float));
  }
  void fill(Memory& m, float value) override { std::fill_n(m.data(), m.length(), value); }
  void copy(float* dst, const float* src, int64_t n) override {
    if (n > 0) std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  }

  void surgery(Layout& l, const float* a, const float* r, float* out, const SurgeryParams& p,
               TensorStats* stats) override {
    const std::vector<HostTensor> t = spans(l, a, r, out);
    surgeryCpu(t.data(), l.count(), p, stats);
  }
  void surgeryHost(const HostTensor* tensors, int64_t count, const SurgeryParams& p, TensorStats* stats) override {
    surgeryCpu(tensors, count, p, stats);
  }
  void reduce(Layout& l, const float* a, const float* r, ReduceSums* sums) override {
    const std::vector<HostTensor> t = spans(l, a, r, nullptr);
    reduceAllCpu(t.data(), l.count(), sums);
  }

  void adamwFused(Layout& l, const float* a, const float* r, const double* coefficients, float* p, float* m, float* v,
                  const AdamWParams& hp) override {
    std::vector<FusedTensor> t(static_cast<size_t>(l.count()));
    int64_t off = 0;
    for (size_t i = 0; i < t.size(); ++i) {
      const int64_t n = l.sizes()[i];
      t[i] = {a + off, r + off, p + off, m + off, v + off, n, static_cast<float>(coefficients[i])};
      off += n;
    }
    adamwFusedCpu(t.data(), l.count(), hp);
  }
  void adamw(Layout& l, const float* grad, float* p, float* m, float* v, const AdamWParams& hp) override {
    adamwCpu(grad, p, m, v, l.total(), hp);
  }

  Layers& layers() override { return cpuLayers(); }
  void gemmHost(const GemmCall& g) override {
    if (g.precision != GemmPrecision::Fp32) throw BackendError("craftgrad: bf16 products need a CUDA device; the CPU computes in fp32", "ERR_INVALID_ARG_VALUE");
    craftgrad::gemm(g.M, g.N, g.K, g.alpha, MatRef{g.a, g.transA ? g.M : g.K, g.transA},
                    MatRef{g.b, g.transB ? g.K : g.N, g.transB}, g.beta, g.c, g.N);
  }

 private:
  const std::string name_ = "cpu";
};

}  // namespace

Backend& cpuBackend() {
  static CpuBackend* backend = new CpuBackend();  // never destroyed: workers may outlive static teardown
  return *backend;
}

}  // namespace craftgrad
