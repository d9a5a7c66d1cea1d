// The CUDA backend's layers (core/layers.h) on one device: every operation a model is made
// of, queued on the device's stream. One per device, owned by its backend (cuda_backend.cc)
// and kept for the process. The host side (memory, workspace, products, checks) is in
// layers_cuda.cc; the kernels and their launches are in layer_kernels.cu, but the bf16
// attention's (AttentionShape::precision Bf16: attention_fused.cu, which the attention
// methods dispatch to; its contract is ARCHITECTURE.md §8 "Precision", not the lines below).
//
// Bits: each operation is the arithmetic of the kernels the built-in and Qwen2 steps had
// before they shared it (model_kernels.cu, qwen2_kernels.cu), operation for operation, so a
// model gives the bits it gave then (the mean-pooling backward divides by n, as the built-in
// model's did and PyTorch's mean backward does). Loss means: one CTA of 128 threads, strided
// per-thread sums, then a fixed tree (run-to-run identical).
//
// The layers added for VLA-Adapter (#26), against the CPU's (test/layers-cuda.test.mjs):
// - the CPU's bits on every device: bias + ReLU and its backward, the Pro head's rotary
//   variant (each product rounded, then the sum, as the CPU), the row broadcast, the row
//   embedding, the column copy, LayerScale and its backward, the patch matrix, and
//   LayerNorm's weight and bias gradients (one thread per column, the rows in the CPU's
//   order; each term, a product of two floats, is exact in double);
// - the CPU's bits where CUDA's double erf, exp and tanh give the host libm's (the emulator;
//   on a GPU within an ulp, as core/layers.h allows): GELU's erf form and its backward;
// - within rounding: LayerNorm's mean and rstd and its input gradient (the row sums in a
//   fixed tree where the CPU sums in order; given the same kept mean and rstd, Y is the
//   CPU's bit for bit), and the attention's new forms (causal or bidirectional, Tk keys per
//   sample, the logit gate): the scores, row max and products are the CPU's operations in
//   its order (fma chains over d, then over keys or queries), the softmax sum and Σ P·dP a
//   fixed tree, and the gate's gradient a deterministic reduction without atomics: each
//   softmax row's Σ dS·a over its gated keys in the tree (attnBackRowKernel), then per
//   stream one CTA sums those rows (sample, head, query order, strided per thread) in the
//   tree, times 1 − t² (attnGateGradKernel). Run-to-run identical. The causal, ungated path
//   is the arithmetic it was (test/engine-fixtures-cuda.test.mjs).
//
// Threads: a model's call runs on one host thread; the backend's entry point makes the
// device current there, and lease() does too. The workspace is one per device: a call holds
// it (and so the device's model calls are serialised) from lease() until the lease is gone.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "../core/layers.h"
#include "device_scratch.h"

namespace craftgrad {
namespace cuda {

struct DeviceContext;

class CudaLayers final : public Layers {
 public:
  explicit CudaLayers(int device);
  CudaLayers(const CudaLayers&) = delete;
  CudaLayers& operator=(const CudaLayers&) = delete;

  const char* deviceName() const override { return name_.c_str(); }
  bool hostMemory() const override { return false; }

  // ---- memory (layers_cuda.cc) ----
  // Sets the products' precision for the lease's lifetime (back to Fp32 when it ends).
  std::unique_ptr<WorkspaceLease> lease(size_t bytes, GemmPrecision products) override;
  // Pageable host memory: the copy has left src when the call returns.
  void upload(void* dst, const void* src, size_t bytes) override;
  void download(void* dst, const void* src, size_t bytes) override;
  void copy(float* dst, const float* src, int64_t n) override;
  void zero(float* p, int64_t n) override;
  // CudaError when elements > 2^31 − 1 (the kernels' int dimensions and grid sizes).
  void checkExtent(int64_t elements, const char* what) const override;

  // ---- products (layers_cuda.cc: gemm_kernels.cu's, batched in launches of up to 4; in
  // bf16 through cuBLASLt when the lease asked for it, gemm_lt.h) ----
  void gemm(const LayerProduct& p) override;
  void gemmBatch(const LayerProduct* p, int count) override;

  // ---- the rest: layer_kernels.cu ----
  void biasGelu(float* Z, const float* b, const float* residual, float* out, int64_t rows, int64_t cols) override;
  void geluBackward(const float* Z, const float* G, float* dZ, int64_t n, int streams) override;
  void addBias(float* Y, const float* b, int64_t rows, int64_t cols) override;
  void add(float* Y, const float* X, int64_t n) override;
  void biasGeluErf(float* Z, const float* b, const float* residual, float* out, int64_t rows, int64_t cols) override;
  void geluErfBackward(const float* Z, const float* G, float* dZ, int64_t n, int streams) override;
  void biasRelu(float* Z, const float* b, float* out, int64_t rows, int64_t cols) override;
  void reluBackward(const float* Z, const float* G, float* dZ, int64_t n, int streams) override;
  void layerScaleAdd(float* Y, const float* X, const float* gamma, int64_t rows, int64_t cols) override;
  void layerScaleBackward(const float* dY, const float* gamma, float* dX, int64_t rows, int64_t cols) override;
  void swiglu(const float* Gt, const float* Up, float* Act, int64_t n) override;
  void swigluBackward(const float* Gt, const float* Up, float* dAct, float* dUp, int64_t n, int64_t m) override;
  void rmsNorm(int64_t rows, int64_t D, float eps, const float* X, const float* w, float* Y, float* rstd) override;
  void rmsNormBackward(int64_t rows, int64_t M, int64_t D, const float* dY, const float* X, const float* rstd,
                       const float* w, float* dX) override;
  void layerNorm(int64_t rows, int64_t D, float eps, const float* X, const float* w, const float* b, float* Y,
                 float* mean, float* rstd) override;
  void layerNormBackward(int64_t rows, int64_t M, int64_t D, const float* dY, const float* X, const float* mean,
                         const float* rstd, const float* w, float* dX) override;
  void layerNormParamGrad(int64_t M, int64_t D, const float* dY, const float* X, const float* mean, const float* rstd,
                          float scale, bool accumulate, float* dW, float* dB) override;
  void rope(float* X, int64_t rows, int64_t width, int64_t hd, int64_t T, const float* cosT, const float* sinT,
            bool inverse) override;
  void ropeProHead(float* X, int64_t rows, int64_t width, int64_t hd, int64_t T, const float* cosT, const float* sinT,
                   bool inverse) override;
  // B·heads·T·Tk floats for the probabilities; with a backward of `streams` streams, plus
  // streams·B·heads·T·Tk for its dS and streams·B·heads·T doubles for the gate gradient's
  // per-row partial sums (always reserved: the shape's gate pointer may not be set yet when
  // a plan counts its workspace). The scratch must be 8-byte aligned (a workspace buffer is
  // 256-byte aligned); the backward checks it.
  int64_t attentionScratch(const AttentionShape& s, int streams) const override;
  void attentionForward(const AttentionShape& s, const float* Q, const float* K, const float* V, float* Att,
                        float* rowMax, float* rowSum, float* scratch) override;
  void attentionBackward(const AttentionShape& s, int streams, const float* Q, const float* K, const float* V,
                         const float* rowMax, const float* rowSum, const float* dAtt, float* dQ, float* dK, float* dV,
                         float* dGate, float* scratch) override;
  void patchify(const float* images, float* P, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p) override;
  void embedSequence(float* H, const float* prefix, const int32_t* ids, const float* embed, const float* queries,
                     int64_t B, int64_t T, int64_t P, int64_t S, int64_t D) override;
  void gatherRows(float* dst, const float* src, int64_t B, int64_t T, int64_t D, int64_t t0, int64_t n,
                  bool gather) override;
  void broadcastRows(float* dst, const float* src, int64_t B, int64_t T, int64_t D, int64_t t0, int64_t n) override;
  void embedRows(float* H, const int32_t* ids, int64_t idStride, int64_t idOffset, const float* embed, int64_t B,
                 int64_t T, int64_t D, int64_t t0, int64_t n) override;
  void embedRowsBf16(float* H, const int32_t* ids, int64_t idStride, int64_t idOffset, const uint16_t* embed, int64_t B,
                     int64_t T, int64_t D, int64_t t0, int64_t n) override;
  void widenBf16(float* dst, const uint16_t* src, int64_t n) override;
  void copyColumns(float* dst, int64_t ldDst, const float* src, int64_t ldSrc, int64_t rows, int64_t cols,
                   bool accumulate) override;
  void pool(const PoolShape& s, const float* H, float* f, int32_t* argmax) override;
  void poolBackward(const PoolShape& s, const float* dF, const int32_t* argmax, float* G) override;
  void l1Loss(const float* O, const float* bias, const float* Y, float* dO, int64_t rows, int64_t cols, double* terms,
              double* loss) override;
  void mseLoss(const float* f, const float* fa, float* dF, int64_t n, double* terms, double* loss) override;
  void columnSum(const float* X, int64_t rows, int64_t cols, int64_t ld, float scale, bool accumulate,
                 float* g) override;

 private:
  int device_;
  std::string name_;
  DeviceContext& ctx_;
  Scratch workspace_;  // every model's calls on this device
  // The products' precision of the call holding the workspace (lease()); Fp32 otherwise.
  GemmPrecision products_ = GemmPrecision::Fp32;
};

}  // namespace cuda
}  // namespace craftgrad
