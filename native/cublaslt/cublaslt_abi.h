// The part of cuBLASLt's C interface craftgrad calls, declared here so that the build needs
// no CUDA math headers or libraries: libcublasLt is opened at run time
// (cublaslt_library.h), as native/nccl opens NCCL. Every value and signature below is
// cuBLASLt's own (cublasLt.h, cublas_api.h and library_types.h of CUDA 12 and 13; the
// enumerators used have kept their values since cuBLASLt 11); the stream is CUDA's
// cudaStream_t, a pointer, passed through.
#pragma once
#include <cstddef>
#include <cstdint>

extern "C" {

typedef enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_ARCH_MISMATCH = 8,
  CUBLAS_STATUS_MAPPING_ERROR = 11,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
  CUBLAS_STATUS_LICENSE_ERROR = 16,
} cublasStatus_t;

typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;

// library_types.h: the element types used (fp32 and bf16).
typedef enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 } cudaDataType_t;

// cublas_api.h: fp32 accumulation (no TF32: that is CUBLAS_COMPUTE_32F_FAST_TF32 = 77).
typedef enum { CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;

typedef struct cublasLtContext* cublasLtHandle_t;
typedef struct cublasLtMatmulDescOpaque* cublasLtMatmulDesc_t;
typedef struct cublasLtMatrixLayoutOpaque* cublasLtMatrixLayout_t;
typedef struct cublasLtMatmulPreferenceOpaque* cublasLtMatmulPreference_t;

// Semi-opaque, 64 bytes: held by value (cublasLt.h).
typedef struct {
  uint64_t data[8];
} cublasLtMatmulAlgo_t;

typedef struct {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
} cublasLtMatmulHeuristicResult_t;

typedef enum {
  CUBLASLT_MATMUL_DESC_TRANSA = 3,  // int32_t cublasOperation_t
  CUBLASLT_MATMUL_DESC_TRANSB = 4,
} cublasLtMatmulDescAttributes_t;

typedef enum {
  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,    // uint64_t
  CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK = 3,  // uint32_t, cublasLtReductionScheme_t bits
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,  // uint32_t (default 256)
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8,
} cublasLtMatmulPreferenceAttributes_t;

// How split-K partial products are added (none: each output is one accumulation over k).
typedef enum {
  CUBLASLT_REDUCTION_SCHEME_NONE = 0,
  CUBLASLT_REDUCTION_SCHEME_INPLACE = 1,
  CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE = 2,
  CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE = 4,
  CUBLASLT_REDUCTION_SCHEME_MASK = 7,
} cublasLtReductionScheme_t;

typedef enum {
  CUBLASLT_ALGO_CONFIG_SPLITK_NUM = 2,         // uint32_t, 1: no split
  CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME = 3,   // uint32_t cublasLtReductionScheme_t
} cublasLtMatmulAlgoConfigAttributes_t;

typedef void* cublasLtStream_t;  // cudaStream_t

typedef cublasStatus_t (*cublasLtCreate_fn)(cublasLtHandle_t* handle);
typedef cublasStatus_t (*cublasLtDestroy_fn)(cublasLtHandle_t handle);
typedef size_t (*cublasLtGetVersion_fn)(void);
typedef const char* (*cublasLtGetStatusName_fn)(cublasStatus_t status);
typedef const char* (*cublasLtGetStatusString_fn)(cublasStatus_t status);
typedef cublasStatus_t (*cublasLtMatmulDescCreate_fn)(cublasLtMatmulDesc_t* desc, cublasComputeType_t computeType,
                                                       cudaDataType_t scaleType);
typedef cublasStatus_t (*cublasLtMatmulDescDestroy_fn)(cublasLtMatmulDesc_t desc);
typedef cublasStatus_t (*cublasLtMatmulDescSetAttribute_fn)(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                                             const void* buf, size_t sizeInBytes);
// Column-major unless told otherwise (craftgrad never does: see native/cuda/gemm_lt.cc).
typedef cublasStatus_t (*cublasLtMatrixLayoutCreate_fn)(cublasLtMatrixLayout_t* layout, cudaDataType_t type, uint64_t rows,
                                                         uint64_t cols, int64_t ld);
typedef cublasStatus_t (*cublasLtMatrixLayoutDestroy_fn)(cublasLtMatrixLayout_t layout);
typedef cublasStatus_t (*cublasLtMatmulPreferenceCreate_fn)(cublasLtMatmulPreference_t* pref);
typedef cublasStatus_t (*cublasLtMatmulPreferenceDestroy_fn)(cublasLtMatmulPreference_t pref);
typedef cublasStatus_t (*cublasLtMatmulPreferenceSetAttribute_fn)(cublasLtMatmulPreference_t pref,
                                                                   cublasLtMatmulPreferenceAttributes_t attr, const void* buf,
                                                                   size_t sizeInBytes);
typedef cublasStatus_t (*cublasLtMatmulAlgoGetHeuristic_fn)(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                                             cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                                             cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                                             cublasLtMatmulPreference_t pref, int requestedAlgoCount,
                                                             cublasLtMatmulHeuristicResult_t results[], int* returnAlgoCount);
typedef cublasStatus_t (*cublasLtMatmulAlgoConfigGetAttribute_fn)(const cublasLtMatmulAlgo_t* algo,
                                                                   cublasLtMatmulAlgoConfigAttributes_t attr, void* buf,
                                                                   size_t sizeInBytes, size_t* sizeWritten);
// D = alpha·op(A)·op(B) + beta·C; alpha and beta on the host (the default pointer mode).
typedef cublasStatus_t (*cublasLtMatmul_fn)(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha,
                                            const void* A, cublasLtMatrixLayout_t Adesc, const void* B,
                                            cublasLtMatrixLayout_t Bdesc, const void* beta, const void* C,
                                            cublasLtMatrixLayout_t Cdesc, void* D, cublasLtMatrixLayout_t Ddesc,
                                            const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspaceSizeInBytes,
                                            cublasLtStream_t stream);

}  // extern "C"
