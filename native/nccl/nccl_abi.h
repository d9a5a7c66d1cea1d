// The part of NCCL's C interface craftgrad calls, declared here so that the build needs no
// NCCL headers or library: libnccl is opened at run time (nccl_library.h), the way vLLM's
// pynccl and CuPy do it. Every value and signature below is NCCL's own (nccl.h of NCCL 2.x,
// stable since 2.7); the stream is NCCL's cudaStream_t, a pointer, passed through.
#pragma once
#include <cstddef>

extern "C" {

typedef struct ncclComm* ncclComm_t;

#define CRAFTGRAD_NCCL_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[CRAFTGRAD_NCCL_UNIQUE_ID_BYTES];
} ncclUniqueId;

typedef enum {
  ncclSuccess = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError = 2,
  ncclInternalError = 3,
  ncclInvalidArgument = 4,
  ncclInvalidUsage = 5,
  ncclRemoteError = 6,
  ncclInProgress = 7,
} ncclResult_t;

// Only float32 is used (ncclFloat32 = ncclFloat = 7 in nccl.h).
typedef enum { ncclFloat32 = 7 } ncclDataType_t;

typedef void* ncclStream_t;  // cudaStream_t

typedef ncclResult_t (*ncclGetVersion_fn)(int* version);
typedef ncclResult_t (*ncclGetUniqueId_fn)(ncclUniqueId* uniqueId);
// commId is passed by value (128 bytes), as in nccl.h.
typedef ncclResult_t (*ncclCommInitRank_fn)(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank);
typedef ncclResult_t (*ncclCommDestroy_fn)(ncclComm_t comm);
typedef ncclResult_t (*ncclCommAbort_fn)(ncclComm_t comm);
typedef ncclResult_t (*ncclCommGetAsyncError_fn)(ncclComm_t comm, ncclResult_t* asyncError);
typedef const char* (*ncclGetErrorString_fn)(ncclResult_t result);
typedef ncclResult_t (*ncclGroupStart_fn)();
typedef ncclResult_t (*ncclGroupEnd_fn)();
typedef ncclResult_t (*ncclSend_fn)(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                                    ncclStream_t stream);
typedef ncclResult_t (*ncclRecv_fn)(void* recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                                    ncclStream_t stream);

}  // extern "C"
