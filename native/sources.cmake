# Every source file of the addon, once, by layer (docs/ARCHITECTURE.md §2). Adding a file is
# one line in its layer's list; CMakeLists.txt decides which lists a build compiles and with
# which flags. Headers and .inc files are not listed: the compiler finds them.

set(CRAFTGRAD_CORE_SOURCES
  native/core/backend.cc
  native/core/model_desc.cc
  native/core/qwen2_desc.cc
  native/core/vla_desc.cc
  native/core/thread_pool.cc)

# The models (native/models): each a driver written once over core/layers.h, for every backend.
set(CRAFTGRAD_MODEL_SOURCES
  native/models/action_head.cc
  native/models/adapter_policy.cc
  native/models/lora_linear.cc
  native/models/qwen2_decoder.cc
  native/models/pro_head.cc
  native/models/qwen2_policy.cc
  native/models/vit_tower.cc
  native/models/vla_policy.cc)

# The robot datasets' frames (native/data, ARCHITECTURE.md §4g): the JPEG decoder, and the
# resize, augmentation and normalisation of decoded frames; plain C++ (no backend, no N-API),
# compiled with the baseline flags (no FP contraction).
set(CRAFTGRAD_DATA_SOURCES
  native/data/image_augment.cc
  native/data/image_normalize.cc
  native/data/image_resize.cc
  native/data/jpeg_decoder.cc
  native/data/jpeg_huffman.cc
  native/data/jpeg_idct_ifast.cc
  native/data/jpeg_output.cc)

set(CRAFTGRAD_NAPI_SOURCES
  native/napi/adamw_call.cc
  native/napi/addon.cc
  native/napi/arg_error.cc
  native/napi/backends.cc
  native/napi/env_data.cc
  native/napi/image_call.cc
  native/napi/jpeg_call.cc
  native/napi/js_values.cc
  native/napi/model_call.cc
  native/napi/mpi_call.cc
  native/napi/nccl_call.cc
  native/napi/operands.cc
  native/napi/options.cc
  native/napi/qwen2_call.cc
  native/napi/step_call.cc
  native/napi/surgery_call.cc
  native/napi/tensor_set.cc
  native/napi/typed_arrays.cc
  native/napi/vla_call.cc)

# The CPU backend: files built with the baseline flags on every machine (including the
# generic instruction-set variants), then the variants built once per wider instruction set
# (x86-64 only; CMakeLists.txt gives each list its flags).
set(CRAFTGRAD_CPU_SOURCES
  native/cpu/adamw_cpu.cc
  native/cpu/attention_cpu.cc
  native/cpu/adamw_generic.cc
  native/cpu/cpu_backend.cc
  native/cpu/cpu_features.cc
  native/cpu/gemm.cc
  native/cpu/gemm_generic.cc
  native/cpu/kernels_generic.cc
  native/cpu/layers_cpu.cc
  native/cpu/surgery_cpu.cc)
set(CRAFTGRAD_CPU_AVX2_SOURCES
  native/cpu/adamw_avx2.cc
  native/cpu/gemm_avx2.cc
  native/cpu/kernels_avx2.cc)
set(CRAFTGRAD_CPU_AVX512_SOURCES
  native/cpu/adamw_avx512.cc
  native/cpu/gemm_avx512.cc
  native/cpu/kernels_avx512.cc)

# The CUDA backend: kernels (nvcc, or the emulator's launch rewriter) and host code (C++).
set(CRAFTGRAD_CUDA_KERNEL_SOURCES
  native/cuda/adamw_kernels.cu
  native/cuda/attention_fused.cu
  native/cuda/collective_kernels.cu
  native/cuda/gemm_kernels.cu
  native/cuda/layer_kernels.cu
  native/cuda/surgery_kernels.cu)
set(CRAFTGRAD_CUDA_HOST_SOURCES
  native/cuda/cuda_backend.cc
  native/cuda/cuda_device.cc
  native/cuda/gemm_host.cc
  native/cuda/gemm_lt.cc
  native/cuda/layers_cuda.cc
  native/cuda/nccl_communicator.cc
  native/cuda/tuning.cc)

# NCCL (native/nccl): loaded at run time with dlopen, so compiled into every build (it needs
# no NCCL at build time); only the CUDA backend uses it.
set(CRAFTGRAD_NCCL_SOURCES native/nccl/nccl_library.cc)

# cuBLASLt (native/cublaslt): loaded at run time with dlopen, like NCCL, so compiled into every
# build; only the CUDA backend's products use it.
set(CRAFTGRAD_CUBLASLT_SOURCES native/cublaslt/cublaslt_library.cc)

# MPI (native/mpi): the collectives of multi-process training, with MPI when CMake finds it,
# else the stand-in that says this build has none.
set(CRAFTGRAD_MPI_SOURCES native/mpi/mpi_comm.cc)
set(CRAFTGRAD_MPI_NONE_SOURCES native/mpi/mpi_none.cc)
