// The CUDA backend behind core/backend.h: each operation delegates to the functions of
// cuda_backend.h and gemm_host.h on one device; layers() is the device's CudaLayers, which
// the models' drivers (native/models) run on.
#include <memory>
#include <mutex>
#include <vector>

#include "cuda_backend.h"
#include "gemm_host.h"
#include "layers_cuda.h"
#include "nccl_communicator.h"

namespace craftgrad {
namespace cuda {
namespace {

// A layout with its device tables (chunk table, scratch), made on first use: sets that
// never reach a surgery or optimizer step (the model's frozen weights) take no device memory for it.
class DeviceLayout final : public craftgrad::Layout {
 public:
  DeviceLayout(int device, std::vector<int64_t> sizes) : craftgrad::Layout(std::move(sizes)), device_(device) {}
  cuda::Layout& tables() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!tables_) tables_ = makeLayout(device_, sizes());
    return *tables_;
  }

 private:
  int device_;
  std::mutex mu_;
  std::shared_ptr<cuda::Layout> tables_;
};

cuda::Layout& tablesOf(craftgrad::Layout& l) { return static_cast<DeviceLayout&>(l).tables(); }

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device) : device_(device), name_("cuda:" + std::to_string(device)), layers_(device) {}
  const std::string& name() const override { return name_; }
  bool hostMemory() const override { return false; }

  std::shared_ptr<Memory> allocate(int64_t length) override { return std::make_shared<DeviceMemory>(device_, length); }
  std::shared_ptr<craftgrad::Layout> layout(std::vector<int64_t> sizes) override {
    return std::make_shared<DeviceLayout>(device_, std::move(sizes));
  }
  // Through data(): m may be a DeviceMemory or a view into one (MemoryView).
  void upload(Memory& m, const float* src, int64_t offset, int64_t count) override {
    uploadDevice(device_, m.data() + offset, src, count);
  }
  void download(const Memory& m, float* dst, int64_t offset, int64_t count) override {
    downloadDevice(device_, dst, m.data() + offset, count);
  }
  void fill(Memory& m, float value) override { fillDevice(device_, m.data(), m.length(), value); }
  void copy(float* dst, const float* src, int64_t n) override { copyDevice(device_, dst, src, n); }

  void surgery(craftgrad::Layout& l, const float* a, const float* r, float* out, const SurgeryParams& p,
               TensorStats* stats) override {
    cuda::surgery(tablesOf(l), a, r, out, p, stats);
  }
  void surgeryHost(const HostTensor* tensors, int64_t count, const SurgeryParams& p, TensorStats* stats) override {
    cuda::surgeryHost(device_, tensors, count, p, stats);
  }
  void reduce(craftgrad::Layout& l, const float* a, const float* r, ReduceSums* sums) override {
    cuda::reduce(tablesOf(l), a, r, sums);
  }
  void adamwFused(craftgrad::Layout& l, const float* a, const float* r, const double* coefficients, float* p,
                  float* m, float* v, const AdamWParams& hp) override {
    cuda::adamwFused(tablesOf(l), a, r, coefficients, p, m, v, hp);
  }
  void adamw(craftgrad::Layout& l, const float* grad, float* p, float* m, float* v, const AdamWParams& hp) override {
    cuda::adamw(tablesOf(l), grad, p, m, v, hp);
  }
  void gemmHost(const GemmCall& g) override {
    cuda::gemmHost(device_, g.M, g.N, g.K, g.alpha, g.a, g.transA, g.b, g.transB, g.beta, g.c,
                   static_cast<GemmVariant>(g.variant), g.precision);
  }
  std::unique_ptr<Communicator> communicator(const CommunicatorInit& init) override {
    return makeNcclCommunicator(device_, init);
  }
  Layers& layers() override { return layers_; }

 private:
  int device_;
  std::string name_;
  CudaLayers layers_;  // the device's one
};

}  // namespace

Backend& backend(int device) {
  requireDevice(device, "device");
  static std::mutex mu;
  static auto* backends = new std::vector<std::unique_ptr<CudaBackend>>();  // never destroyed (see DeviceContext)
  std::lock_guard<std::mutex> lock(mu);
  if (backends->size() <= static_cast<size_t>(device)) backends->resize(static_cast<size_t>(device) + 1);
  auto& slot = (*backends)[static_cast<size_t>(device)];
  if (!slot) slot = std::make_unique<CudaBackend>(device);
  return *slot;
}

}  // namespace cuda
}  // namespace craftgrad
