// The operations models are made of, declared once for every backend (ARCHITECTURE.md §4):
// each backend implements this interface once (native/cpu/layers_cpu.cc: CpuLayers,
// native/cuda/layers_cuda.cc: CudaLayers), and every model is a driver written once on top
// of it (native/models/). No N-API and no CUDA here.
//
// Memory: every pointer is in the backend's memory (host for the CPU, the device for
// CUDA) unless it says "host". A model's call carves all of its buffers out of one
// workspace (lease()), sized by a first, counting pass over the same plan (workspace.h).
// Operations are queued in order on the backend's stream; `download` waits for them.
//
// Numeric contract (the same for every backend unless a line says otherwise):
// - products: gemm(), one fp32 accumulator per output element over k = 0..K-1 in order,
//   one fused multiply-add per step (gemm.h); bits depend on the data only.
// - element-wise operations: explicitly rounded fp32 operations in the order written
//   here (no contraction into fma), gelu_math.h for GELU.
// - sums over rows or tokens (pooling, bias and query gradients): double, in row order.
// - row reductions (RMSNorm, LayerNorm, softmax, the attention gate's gradient): double; the
//   CPU sums in order, CUDA in a fixed tree (run-to-run identical; equal to the CPU's within
//   rounding; native/cuda/layers_cuda.h). Loss means: the CPU sums in
//   order, CUDA in a fixed tree.
// - exp: the CPU's std::exp, CUDA's expf (equal within rounding).
// - erf and tanh (GELU's erf form, the attention gate): in double, rounded to float once
//   (the CPU's libm, CUDA's double functions: equal within rounding).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

namespace craftgrad {

// The inputs of a product (and of the attention's products): fp32, or rounded to bf16 (round
// to nearest even) with fp32 accumulation and output (ARCHITECTURE.md §8 "Precision"). bf16 is
// a CUDA backend's only (products through cuBLASLt, native/cuda/gemm_lt.h; the CPU refuses it).
enum class GemmPrecision : int { Fp32 = 0, Bf16 = 1 };

// Pooling over tokens: the mean, or the max (the first arg-max, a NaN winning as torch.max).
enum class Pooling : int { Mean = 0, Max = 1 };

// A row-major operand: element (i, k) at p[i*ld + k], or p[k*ld + i] when transposed. When
// p16 is set the operand is bf16 bits at p16 instead (p unused; ld in elements): a frozen
// weight stored in bf16 (ARCHITECTURE.md §8 "Precision"). Only a backend with bf16 products
// reads one (CUDA: cuBLASLt reads it in place; without cuBLASLt it is widened to fp32 first).
struct LayerMat {
  const float* p;
  int64_t ld;
  bool trans;
  const uint16_t* p16 = nullptr;
};

// C (M×N, leading dimension ldc) = beta·C + alpha·op(A)(M×K)·op(B)(K×N); beta is 0 or 1
// (with beta 0, C is never read).
struct LayerProduct {
  int64_t M, N, K;
  float alpha;
  LayerMat A, B;
  float beta;
  float* C;
  int64_t ldc;
};

// Scaled dot-product attention over B samples: Q (B·T × heads·hd) queries, K and V
// (B·Tk × kvHeads·hd) keys and values, Tk = keys() (T unless `Tk` says otherwise), query
// head h reading KV head h / (heads / kvHeads) (grouped-query). Scores a = (q·kᵀ)·scale (the
// product's alpha), then, when a gate is given, s = a·t on the keys [gateBegin, gateEnd) with
// t = float(tanh(double(*gate))) (s = a elsewhere); causal: key j > query i masked (needs
// Tk == T), else every query reads every key (bidirectional: timm's ViT Attention, v0.9.10
// timm/models/vision_transformer.py:80-97, F.scaled_dot_product_attention without a mask, or
// q·scale @ kᵀ, softmax, @ v). Softmax in fp32 from the row max with the sum in double, then
// times V. The causal form without a gate is transformers' eager Qwen2 attention.
//
// The gate is VLA-Adapter's Pro head (MLPResNetBlock_Pro, OpenHelix-Team/VLA-Adapter
// prismatic/models/action_heads.py:319-320, 343-344, 388-399): one trainable scalar per
// block, nn.Parameter(torch.zeros(1)), shared by every head and sample; the logits of the
// task keys (the last key group of [self T; adapter h_a and p, K_a; task h_t, K_t]) are
// multiplied by tanh(g) before the 1/√hd and the softmax over all T + K_a + K_t keys (the
// task keys are not masked: at g = 0 their logits are 0, not −∞). The caller lays each
// sample's keys out in that order (K and V rows b·Tk …) and sets [gateBegin, gateEnd) to the
// task group. The head's RoPE (its own interleaved form, action_heads.py:125-164) and the
// projections are the caller's.
struct AttentionShape {
  int64_t B = 0, T = 0, heads = 0, kvHeads = 0, hd = 0;
  float scale = 1.0f;
  bool causal = true;
  int64_t Tk = 0;  // keys per sample; 0: T
  // The logit gate: keys [gateBegin, gateEnd) of each sample, the raw parameter g at `gate`
  // (one float in backend memory); no gate when `gate` is null or the range is empty.
  int64_t gateBegin = 0, gateEnd = 0;
  const float* gate = nullptr;
  // Bf16: Q, K and V enter the score and value products rounded to bf16 and P is rounded to
  // bf16 before P·V (as PyTorch's flash attention under bf16 autocast); the softmax statistics,
  // the accumulations and every output stay fp32. A backend without bf16 throws.
  GemmPrecision precision = GemmPrecision::Fp32;
  int64_t keys() const { return Tk > 0 ? Tk : T; }
  bool gated() const { return gate != nullptr && gateEnd > gateBegin; }
  int64_t qDim() const { return heads * hd; }
  int64_t kvDim() const { return kvHeads * hd; }
  int64_t rows() const { return B * heads * T; }  // softmax rows: rowMax and rowSum each hold this many
};

// Pooling over tokens [t0, t0 + n) of H (B, T, D) into columns [off, off + D) of f (B × F).
struct PoolShape {
  int64_t B = 0, T = 0, D = 0, F = 0;
  int64_t t0 = 0, n = 0, off = 0;
  Pooling pool = Pooling::Mean;
};

// The backend's workspace for one call, held until it is destroyed (CUDA: one call per
// device at a time).
class WorkspaceLease {
 public:
  virtual ~WorkspaceLease() = default;
  virtual char* data() const = 0;
};

class Layers {
 public:
  virtual ~Layers() = default;
  // "cpu" or "cuda:N", as errors name the device.
  virtual const char* deviceName() const = 0;
  // True when the backend computes on host memory (host inputs are then used in place).
  virtual bool hostMemory() const = 0;

  // ---- memory ----
  // At least `bytes` of workspace, 256-byte aligned, for the lease's lifetime. `products`:
  // the precision of every gemm()/gemmBatch() made while the lease is held (a model call's
  // products are all of one precision, as under autocast); a backend without bf16 throws
  // BackendError for Bf16 (the CPU).
  virtual std::unique_ptr<WorkspaceLease> lease(size_t bytes, GemmPrecision products = GemmPrecision::Fp32) = 0;
  // dst (backend) = host src, `bytes` bytes; on a host backend a plain copy.
  virtual void upload(void* dst, const void* src, size_t bytes) = 0;
  // Waits for the queued operations, then host dst = src (backend).
  virtual void download(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy(float* dst, const float* src, int64_t n) = 0;
  virtual void zero(float* p, int64_t n) = 0;
  // Throws BackendError when `elements` exceeds what the backend's kernels can index
  // (CUDA: 2^31 − 1), naming `what`; the CPU indexes with 64 bits.
  virtual void checkExtent(int64_t elements, const char* what) const = 0;

  // ---- products ----
  virtual void gemm(const LayerProduct& p) = 0;
  // Independent products (no C overlaps another product's C or any operand), all with the
  // first's transposes; the backend may run them together. Same bits as one by one.
  virtual void gemmBatch(const LayerProduct* p, int count) = 0;

  // ---- element-wise ----
  // Z[i,j] += b[j]; out[i,j] = gelu(Z[i,j]), or residual[i,j] + gelu(Z[i,j]) when given.
  virtual void biasGelu(float* Z, const float* b, const float* residual, float* out, int64_t rows, int64_t cols) = 0;
  // dZ[s·n + i] = G[s·n + i] · gelu'(Z[i]) for `streams` blocks of n; G may equal dZ.
  virtual void geluBackward(const float* Z, const float* G, float* dZ, int64_t n, int streams) = 0;
  // Y[i,j] += b[j].
  virtual void addBias(float* Y, const float* b, int64_t rows, int64_t cols) = 0;
  // Y[i] += X[i].
  virtual void add(float* Y, const float* X, int64_t n) = 0;
  // GELU, exact (erf) form (gelu_erf.h: PyTorch's nn.GELU() default; timm's ViT Mlp and
  // VLA-Adapter's projectors): as biasGelu, with gelu = geluErf.
  virtual void biasGeluErf(float* Z, const float* b, const float* residual, float* out, int64_t rows, int64_t cols) = 0;
  // dZ[s·n + i] = G[s·n + i] · geluErfGrad(Z[i]) for `streams` blocks of n; G may equal dZ.
  virtual void geluErfBackward(const float* Z, const float* G, float* dZ, int64_t n, int streams) = 0;
  // ReLU after a bias, torch.relu's (NaN stays NaN): Z[i,j] += b[j] (b may be null: no bias);
  // out[i,j] = Z[i,j] > 0 || isnan(Z[i,j]) ? Z[i,j] : 0. VLA-Adapter's Pro head (prismatic/models/
  // action_heads.py:98, 298-302: nn.ReLU after fc1 and after each block's ffn Linear).
  virtual void biasRelu(float* Z, const float* b, float* out, int64_t rows, int64_t cols) = 0;
  // dZ[s·n + i] = Z[i] <= 0 ? 0 : G[s·n + i] for `streams` blocks of n (torch's threshold_backward
  // on the input: 0 at Z = 0, and a NaN Z passes G, as torch 1.13's relu backward gives); G may
  // equal dZ.
  virtual void reluBackward(const float* Z, const float* G, float* dZ, int64_t n, int streams) = 0;
  // LayerScale folded into the residual add: Y[i,j] += X[i,j]·gamma[j] (the product rounded,
  // then the sum). timm's LayerScale (v0.9.10 timm/models/vision_transformer.py:104-111,
  // x * gamma; in Block x = x + ls(attn(norm1(x))), :156-157); DINOv2's towers have it
  // (init_values, :2461), SigLIP's do not. Frozen: VLA-Adapter renames gamma to a Parameter
  // `scale_factor` (prismatic/extern/hf/modeling_prismatic.py:58-66), which PEFT's LoRA
  // leaves frozen, so there is no gamma gradient.
  virtual void layerScaleAdd(float* Y, const float* X, const float* gamma, int64_t rows, int64_t cols) = 0;
  // dX[i,j] = dY[i,j]·gamma[j] for `rows` rows (stacked streams are more rows); dX may equal dY.
  virtual void layerScaleBackward(const float* dY, const float* gamma, float* dX, int64_t rows, int64_t cols) = 0;
  // Act = silu(Gt) ⊙ Up.
  virtual void swiglu(const float* Gt, const float* Up, float* Act, int64_t n) = 0;
  // Over n = streams·m values: with k = i mod m, dUp = dAct·(g·σ(g)),
  // dAct ← dAct·Up[k]·(σ(g)·(1 + g·(1 − σ(g)))) (d gate), g = Gt[k].
  virtual void swigluBackward(const float* Gt, const float* Up, float* dAct, float* dUp, int64_t n, int64_t m) = 0;

  // ---- normalisation ----
  // Y = w ⊙ X·rstd per row of D, rstd = 1/√(mean(x²) + eps) kept per row.
  virtual void rmsNorm(int64_t rows, int64_t D, float eps, const float* X, const float* w, float* Y, float* rstd) = 0;
  // dX += the RMSNorm backward of dY for `rows` rows; row i uses X and rstd of row i mod M.
  virtual void rmsNormBackward(int64_t rows, int64_t M, int64_t D, const float* dY, const float* X, const float* rstd,
                               const float* w, float* dX) = 0;

  // LayerNorm per row of D, torch.nn.LayerNorm's: Y = ((X − mean)·rstd)·w + b in fp32
  // (each operation rounded, in that order), mean = Σx/D and var = Σ(x − mean)²/D (biased,
  // https://docs.pytorch.org/docs/stable/generated/torch.nn.LayerNorm.html) summed in double,
  // rstd = 1/√(var + eps) in double; mean and rstd kept per row as float. eps is the model's:
  // timm's ViTs 1e-6 (v0.9.10 timm/models/vision_transformer.py:454, partial(nn.LayerNorm,
  // eps=1e-6), both VLA-Adapter towers), nn.LayerNorm's default 1e-5 in VLA-Adapter's head
  // (prismatic/models/action_heads.py:96, 107, 297).
  virtual void layerNorm(int64_t rows, int64_t D, float eps, const float* X, const float* w, const float* b, float* Y,
                         float* mean, float* rstd) = 0;
  // dX += the LayerNorm input gradient of dY for `rows` rows; row i uses X, mean and rstd
  // of row i mod M (stacked streams). With x̂ = (x − mean)·rstd as the forward rounds it and
  // g = w·dy: dx = rstd·(g − Σg/D − x̂·Σ(g·x̂)/D), in double (sums in order), rounded once.
  virtual void layerNormBackward(int64_t rows, int64_t M, int64_t D, const float* dY, const float* X, const float* mean,
                                 const float* rstd, const float* w, float* dX) = 0;
  // The weight and bias gradients over M rows (one stream): dW[j] = (accumulate ? dW[j] : 0)
  // + scale·float(Σ_i dY[i,j]·x̂[i,j]), dB[j] likewise with Σ_i dY[i,j]; sums in double in
  // row order. For trainable norms only: a ViT tower's are frozen (PEFT's LoRA trains only
  // the adapters), VLA-Adapter's action head trains its LayerNorms with the rest of the head
  // (vla-scripts/finetune.py:903-910: every action_head parameter goes to AdamW).
  virtual void layerNormParamGrad(int64_t M, int64_t D, const float* dY, const float* X, const float* mean,
                                  const float* rstd, float scale, bool accumulate, float* dW, float* dB) = 0;

  // ---- positions ----
  // Rotate-half rotary embedding in place on `width` columns (heads of hd) of `rows` rows,
  // position = row mod T; cosT, sinT (T × hd/2) in backend memory. inverse: the transpose.
  virtual void rope(float* X, int64_t rows, int64_t width, int64_t hd, int64_t T, const float* cosT, const float* sinT,
                    bool inverse) = 0;

  // VLA-Adapter's Pro-head rotary variant in place (prismatic/models/action_heads.py:125-164):
  // tables c, s (T × hd) = cos, sin of cat(freqs, freqs), so column j uses frequency j mod hd/2,
  // given here as cosT, sinT (T × hd/2) of that frequency; rotate_half interleaved: r[2i] =
  // −x[2i+1], r[2i+1] = x[2i]; y = x·c + r·s (each product rounded, then the sum), per head of
  // hd over `width` columns of `rows` rows, position = row mod T. Not a rotation of pairs (the
  // two elements of a pair use different angles), so inverse (the backward) is the transpose:
  // dx[2i] = dy[2i]·c[2i] + dy[2i+1]·s[2i+1], dx[2i+1] = dy[2i+1]·c[2i+1] − dy[2i]·s[2i].
  virtual void ropeProHead(float* X, int64_t rows, int64_t width, int64_t hd, int64_t T, const float* cosT,
                           const float* sinT, bool inverse) = 0;

  // ---- attention ----
  // Workspace floats the attention needs (the forward alone, or with a backward of
  // `streams` streams); 0 when the backend keeps its own.
  virtual int64_t attentionScratch(const AttentionShape& s, int streams) const = 0;
  // Att (B·T × qDim) from roped Q, K, V; keeps each softmax row's max and sum.
  virtual void attentionForward(const AttentionShape& s, const float* Q, const float* K, const float* V, float* Att,
                                float* rowMax, float* rowSum, float* scratch) = 0;
  // dQ (streams·B·T rows), dK and dV (streams·B·Tk rows) from dAtt (streams·B·T rows), the
  // probabilities recomputed from the kept max and sum; a group's K and V gradients summed in
  // head order. With a gate, dGate[st] (one float per stream, written) = float(Σ dS·a ·
  // (1 − t²)) over the gated scores, the sum in double in the fixed order (sample, KV head,
  // head, query, key) — per (sample, KV head) in that order, then those partials in order —
  // whatever the thread count; dGate is not touched without a gate (it may be null then).
  virtual void attentionBackward(const AttentionShape& s, int streams, const float* Q, const float* K, const float* V,
                                 const float* rowMax, const float* rowSum, const float* dAtt, float* dQ, float* dK,
                                 float* dV, float* dGate, float* scratch) = 0;

  // ---- images ----
  // The patch matrix of a patch embedding, so that the convolution is a product: images
  // (B, C, H, W) → P (B·N × C·p·p), N = (H/p)·(W/p) (floor: a Conv2d of kernel and stride p
  // drops the remainder), P[b·N + py·(W/p) + px, (c·p + ky)·p + kx] =
  // images[((b·C + c)·H + py·p + ky)·W + px·p + kx]. Then Y (B·N × D) = P·Wᵀ + bias with the
  // Conv2d weight (D, C, p, p) read as (D × C·p·p) (gemm + addBias by the caller), rows in
  // timm's token order (PatchEmbed, v0.9.10 timm/layers/patch_embed.py:65, 87-89:
  // nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size), then
  // flatten(2).transpose(1, 2)). Forward only: the images need no gradient. Under PEFT 0.11.1
  // (VLA-Adapter's pin), "all-linear" resolves to the base names of the nn.Linear/Conv1D
  // modules (peft src/peft/tuners/tuners_utils.py:716-724 at v0.11.1) matched as name
  // suffixes (:650), so `patch_embed.proj` (a Conv2d) matches the attention's `proj` and gets
  // a LoRA Conv2d (peft src/peft/tuners/lora/layer.py:1105-1107, 849-853: A a Conv2d of the
  // same kernel and stride, B 1×1); PEFT >= 0.15.0 matches full names and leaves it alone.
  // Either way the product form serves: that LoRA is a LoRA linear on P (lora_linear.h).
  virtual void patchify(const float* images, float* P, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p) = 0;

  // ---- sequences ----
  // H (B, T, D) = per sample [prefix (P rows); embed rows of ids (S rows); queries (T−P−S rows)];
  // prefix (B·P·D) and ids (B·S) in backend memory, each id in [0, V).
  virtual void embedSequence(float* H, const float* prefix, const int32_t* ids, const float* embed,
                             const float* queries, int64_t B, int64_t T, int64_t P, int64_t S, int64_t D) = 0;
  // Rows [t0, t0 + n) of each of B samples of T rows (width D): gather: dst (B·n × D) = those
  // rows of src; scatter: those rows of dst = src (B·n × D).
  virtual void gatherRows(float* dst, const float* src, int64_t B, int64_t T, int64_t D, int64_t t0, int64_t n,
                          bool gather) = 0;

  // Rows [t0, t0 + n) of each of B samples of T rows (width D) = src (n × D), the same rows in
  // every sample (a class token, registers, learned queries).
  virtual void broadcastRows(float* dst, const float* src, int64_t B, int64_t T, int64_t D, int64_t t0, int64_t n) = 0;
  // Rows [t0, t0 + n) of each of B samples of T rows (width D) = embed rows of ids[b·idStride +
  // idOffset + i] (i < n), each id in [0, V) (checked by the caller).
  virtual void embedRows(float* H, const int32_t* ids, int64_t idStride, int64_t idOffset, const float* embed, int64_t B,
                         int64_t T, int64_t D, int64_t t0, int64_t n) = 0;
  // The same from a bf16 table (frozen weights stored in bf16): each element widened exactly
  // (bf16 bits << 16). CUDA only: the CPU throws BackendError.
  virtual void embedRowsBf16(float* H, const int32_t* ids, int64_t idStride, int64_t idOffset, const uint16_t* embed,
                             int64_t B, int64_t T, int64_t D, int64_t t0, int64_t n) = 0;
  // dst[0..n) = the bf16 values src[0..n) widened exactly to fp32 (a frozen vector stored in
  // bf16, once per call). CUDA only: the CPU throws BackendError.
  virtual void widenBf16(float* dst, const uint16_t* src, int64_t n) = 0;
  // A block copy between strided matrices: dst[i·ldDst + j] (= or +=) src[i·ldSrc + j] for
  // i < rows, j < cols (concatenating or splitting along columns).
  virtual void copyColumns(float* dst, int64_t ldDst, const float* src, int64_t ldSrc, int64_t rows, int64_t cols,
                           bool accumulate) = 0;

  // ---- pooling (the first arg-max token for max pooling, a NaN winning as torch.max) ----
  virtual void pool(const PoolShape& s, const float* H, float* f, int32_t* argmax) = 0;
  // G at the pooled tokens += the pooling backward of dF (mean: dF / n).
  virtual void poolBackward(const PoolShape& s, const float* dF, const int32_t* argmax, float* G) = 0;

  // ---- losses and gradient writes ----
  // e = (O[i,j] + bias[j]) − Y[i,j]; dO = sign(e)/(rows·cols) (sign(0) = 0, as PyTorch);
  // *loss = mean |e| (double). terms: workspace of rows·cols doubles (CUDA's tree).
  virtual void l1Loss(const float* O, const float* bias, const float* Y, float* dO, int64_t rows, int64_t cols,
                      double* terms, double* loss) = 0;
  // *loss = mean (f − f̃)² (double) over n; dF = 2/n·(f − f̃) when dF is given.
  virtual void mseLoss(const float* f, const float* fa, float* dF, int64_t n, double* terms, double* loss) = 0;
  // g[j] = (accumulate ? g[j] : 0) + scale·float(Σ_i X[i·ld + j]), the sum in double in row
  // order; a null X sums nothing (g = scale·0 or g + scale·0).
  virtual void columnSum(const float* X, int64_t rows, int64_t cols, int64_t ld, float scale, bool accumulate,
                         float* g) = 0;
};

}  // namespace craftgrad
