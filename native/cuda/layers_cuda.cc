// CudaLayers' host side (layers_cuda.h): the device's workspace, copies, the extent check,
// the products and the bf16 widening; the other kernel launches are in layer_kernels.cu.
#include "layers_cuda.h"

#include <mutex>
#include <utility>

#include "cuda_internal.h"
#include "gemm_cuda.h"
#include "gemm_lt.h"

namespace craftgrad {
namespace cuda {
namespace {

// The workspace for one call: holds the device's workspace mutex until destroyed, and the
// products' precision with it (reset to Fp32 before the mutex is released).
class CudaLease final : public WorkspaceLease {
 public:
  CudaLease(std::unique_lock<std::mutex> lock, char* p, GemmPrecision& products)
      : lock_(std::move(lock)), p_(p), products_(products) {}
  ~CudaLease() override { products_ = GemmPrecision::Fp32; }
  char* data() const override { return p_; }

 private:
  std::unique_lock<std::mutex> lock_;
  char* p_;
  GemmPrecision& products_;
};

}  // namespace

CudaLayers::CudaLayers(int device)
    : device_(device), name_("cuda:" + std::to_string(device)), ctx_(deviceContext(device)) {}

std::unique_ptr<WorkspaceLease> CudaLayers::lease(size_t bytes, GemmPrecision products) {
  useDevice(device_);
  std::unique_lock<std::mutex> lock(workspace_.m);  // one model call per device at a time
  char* p = workspace_.reserve(device_, bytes, "model workspace");
  auto held = std::make_unique<CudaLease>(std::move(lock), p, products_);
  products_ = products;
  return held;
}

void CudaLayers::upload(void* dst, const void* src, size_t bytes) {
  if (bytes == 0) return;
  CG_CUDA(device_, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ctx_.stream));
}

void CudaLayers::download(void* dst, const void* src, size_t bytes) {
  // The stream's order puts the copy after every queued operation; the sync also reports
  // what failed in them.
  if (bytes != 0) CG_CUDA(device_, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, ctx_.stream));
  CG_CUDA(device_, cudaStreamSynchronize(ctx_.stream));
}

void CudaLayers::copy(float* dst, const float* src, int64_t n) {
  if (n <= 0 || dst == src) return;
  CG_CUDA(device_, cudaMemcpyAsync(dst, src, sizeof(float) * static_cast<size_t>(n), cudaMemcpyDeviceToDevice,
                                   ctx_.stream));
}

void CudaLayers::zero(float* p, int64_t n) {
  if (n <= 0) return;
  CG_CUDA(device_, cudaMemsetAsync(p, 0, sizeof(float) * static_cast<size_t>(n), ctx_.stream));
}

void CudaLayers::checkExtent(int64_t elements, const char* what) const {
  if (elements > 2147483647LL)
    throw CudaError(std::string("craftgrad: batch too large for ") + what +
                    " (batch×tokens×width must stay below 2^31)");
}

void CudaLayers::widenBf16(float* dst, const uint16_t* src, int64_t n) { launchWidenBf16(ctx_, src, n, dst); }

void CudaLayers::gemm(const LayerProduct& p) { cuda::gemmBatch(ctx_, &p, 1, GemmVariant::Auto, products_); }

void CudaLayers::gemmBatch(const LayerProduct* p, int count) {
  cuda::gemmBatch(ctx_, p, count, GemmVariant::Auto, products_);
}

}  // namespace cuda
}  // namespace craftgrad
