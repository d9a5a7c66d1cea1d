// NCCL as the CUDA backend's Communicator (core/communicator.h). Both collectives keep the
// bits of native/mpi's host versions, so a run's numbers do not depend on the transport:
//   reduce-scatter: NCCL point-to-point in one group (an all-to-all of fixed segments: rank
//     r receives every rank's copy of segment r), then collective_kernels.cu adds the copies
//     in rank order. ncclReduceScatter would add them in the order of NCCL's ring or tree,
//     which changes with the topology and the number of channels;
//   all-gather: each rank sends its segment to every other (segments differ in length by
//     one float, which ncclAllGather, equal counts only, cannot express without a copy).
// The work runs on the device's stream, in order with the backend's kernels. Each call
// waits for the stream before it hands NCCL its buffers and after its last transfer,
// polling ncclCommGetAsyncError and a deadline (CRAFTGRAD_NCCL_TIMEOUT_S, default 600 s,
// PyTorch's default), so that a failed peer or network becomes an error here instead of a
// hang; NCCL alone would need neither wait (stream order), but the first makes the
// emulator's stand-in (test/cuda-emulator/nccl) exact and costs one host round trip per
// round (CRAFTGRAD_NCCL_ROUND_FLOATS floats of each rank's segment).
#include "nccl_communicator.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "../core/segments.h"
#include "../nccl/nccl_library.h"
#include "cuda_internal.h"

namespace craftgrad {
namespace cuda {

namespace {

using nccl::NcclError;

// A positive number from the environment, or `fallback` when unset; NcclError otherwise.
double positiveFromEnv(const char* name, double fallback, const char* unit) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(x > 0) || !(x < 1e15)) {
    throw NcclError(std::string("craftgrad: ") + name + " must be " + unit + " > 0, got \"" + v + "\"");
  }
  return x;
}

// Floats of each rank's segment moved per round (CRAFTGRAD_NCCL_ROUND_FLOATS, default 2^24):
// the receive buffer is p rounds (p × 64 MiB by default), reused every call.
int64_t roundFloats() { return static_cast<int64_t>(positiveFromEnv("CRAFTGRAD_NCCL_ROUND_FLOATS", 1 << 24, "a number of floats")); }
double timeoutSeconds() { return positiveFromEnv("CRAFTGRAD_NCCL_TIMEOUT_S", 600, "a number of seconds"); }

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(int device, const CommunicatorInit& init)
      : lib_(nccl::library()),
        ctx_(deviceContext(device)),
        rank_(init.rank),
        size_(init.size),
        timeout_(timeoutSeconds()),
        roundFloats_(roundFloats()) {
    ncclUniqueId id;
    static_assert(sizeof id.internal == sizeof init.id, "NCCL's unique id is 128 bytes");
    std::memcpy(id.internal, init.id.data(), sizeof id.internal);
    useDevice(device);  // NCCL binds the communicator to the current device
    lib_.check(lib_.commInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
  }

  ~NcclCommunicator() override {
    // After an error fail() has already aborted it (destroy would wait for the failed work).
    if (comm_ != nullptr) lib_.commDestroy(comm_);
    if (recv_) releaseDevice(ctx_.device, recv_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void reduceScatterInRankOrder(float* data, int64_t n) override {
    live();
    // One rank takes the same path (empty groups, the sum over one row), so that a machine
    // with one GPU runs all of it but the transfers.
    if (n == 0) return;
    const int64_t mine = segmentLength(n, rank_);
    const int64_t longest = segmentLength(n, 0);  // the first segment is never shorter
    const int64_t round = std::min(longest, roundFloats_);
    reserve(round * size_);
    float* seg = data + segmentStart(n, rank_, size_);
    // The same number of rounds on every rank: the longest segment's.
    for (int64_t at = 0; at < longest; at += round) {
      waitForStream("the work before the reduction");
      const int64_t take = std::clamp<int64_t>(mine - at, 0, round);
      group([&] {
        for (int r = 0; r < size_; ++r) {
          if (r == rank_) continue;
          const int64_t len = std::clamp<int64_t>(segmentLength(n, r) - at, 0, round);
          if (len > 0) lib_.check(lib_.send(data + segmentStart(n, r, size_) + at, len, ncclFloat32, r, comm_, ctx_.stream), "ncclSend");
          if (take > 0) lib_.check(lib_.recv(recv_ + r * round, take, ncclFloat32, r, comm_, ctx_.stream), "ncclRecv");
        }
      });
      launchSumRowsInRankOrder(ctx_, recv_, round, size_, rank_, seg + at, take);
    }
    waitForStream("the reduce-scatter");
  }

  void allgatherSegments(float* data, int64_t n) override {
    live();
    if (n == 0) return;
    waitForStream("the work before the all-gather");
    const int64_t mine = segmentLength(n, rank_);
    const float* seg = data + segmentStart(n, rank_, size_);
    group([&] {
      for (int r = 0; r < size_; ++r) {
        if (r == rank_) continue;
        if (mine > 0) lib_.check(lib_.send(seg, mine, ncclFloat32, r, comm_, ctx_.stream), "ncclSend");
        const int64_t theirs = segmentLength(n, r);
        if (theirs > 0) lib_.check(lib_.recv(data + segmentStart(n, r, size_), theirs, ncclFloat32, r, comm_, ctx_.stream), "ncclRecv");
      }
    });
    waitForStream("the all-gather");
  }

  void abort() noexcept override {
    if (comm_ == nullptr) return;
    lib_.commAbort(comm_);
    comm_ = nullptr;
  }

 private:
  int64_t segmentLength(int64_t n, int r) const { return segmentStart(n, r + 1, size_) - segmentStart(n, r, size_); }

  void live() const {
    if (comm_ == nullptr) throw NcclError("craftgrad: this NCCL communicator was aborted after an error; it cannot be used again");
  }

  void reserve(int64_t floats) {
    if (floats <= recvFloats_) return;
    if (recv_) releaseDevice(ctx_.device, recv_);
    recv_ = nullptr;
    recv_ = static_cast<float*>(mallocDevice(ctx_.device, sizeof(float) * static_cast<size_t>(floats), "the NCCL receive buffer"));
    recvFloats_ = floats;
  }

  // ncclGroupStart; body; ncclGroupEnd, ending the group even when body throws.
  template <typename Body>
  void group(Body body) {
    lib_.check(lib_.groupStart(), "ncclGroupStart");
    try {
      body();
    } catch (...) {
      lib_.groupEnd();
      fail();
      throw;
    }
    const ncclResult_t r = lib_.groupEnd();
    if (r != ncclSuccess) fail();
    lib_.check(r, "ncclGroupEnd");
  }

  // Returns when the stream is idle; throws (and aborts the communicator) on an NCCL
  // asynchronous error or when the deadline passes.
  void waitForStream(const char* what) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t q = cudaStreamQuery(ctx_.stream);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) {
        fail();
        throwCuda(q, "cudaStreamQuery", ctx_.device);
      }
      ncclResult_t async = ncclSuccess;
      lib_.check(lib_.commGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
      if (async != ncclSuccess && async != ncclInProgress) {
        fail();
        lib_.check(async, "an NCCL operation (a peer or the network failed)");
      }
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (waited > timeout_) {
        fail();
        throw NcclError("craftgrad: " + std::string(what) + " on " + "cuda:" + std::to_string(ctx_.device) + " made no progress for " +
                        std::to_string(static_cast<int>(timeout_)) + " s (CRAFTGRAD_NCCL_TIMEOUT_S): a peer has stopped");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  // After an error NCCL's state is unknown: abort, so peers fail too instead of waiting.
  void fail() noexcept { abort(); }

  const nccl::Library& lib_;
  DeviceContext& ctx_;
  const int rank_, size_;
  const double timeout_;
  const int64_t roundFloats_;
  ncclComm_t comm_ = nullptr;
  float* recv_ = nullptr;
  int64_t recvFloats_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> makeNcclCommunicator(int device, const CommunicatorInit& init) {
  return std::make_unique<NcclCommunicator>(device, init);
}

}  // namespace cuda
}  // namespace craftgrad
