// A group of processes, one per rank of a data-parallel run, reducing sets that live in a
// backend's memory (Backend::communicator). The CUDA backend's is NCCL (native/cuda/
// nccl_communicator.cc); CPU sets go through MPI (native/mpi) and have none. Both
// collectives have the bits of native/mpi's: segments (segments.h) summed in rank order.
#pragma once
#include <array>
#include <cstdint>

namespace craftgrad {

struct CommunicatorInit {
  std::array<char, 128> id{};  // the implementation's rendezvous id, made by rank 0 (NCCL's ncclUniqueId)
  int rank = 0, size = 1;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Leaves in this rank's segment of `data` (n floats, the same n on every rank) the
  // rank-order sum of every rank's copy of it; the rest of `data` keeps its values.
  virtual void reduceScatterInRankOrder(float* data, int64_t n) = 0;
  // Copies every rank's segment of `data` into every rank's `data`.
  virtual void allgatherSegments(float* data, int64_t n) = 0;
  // Ends the communicator now; later calls throw. Peers blocked with it see an error.
  virtual void abort() noexcept = 0;
};

}  // namespace craftgrad
