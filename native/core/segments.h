// How the rank-order collectives cut n floats among p ranks (native/mpi on the host,
// native/cuda's NCCL communicator on devices): segment r is [segmentStart(n, r, p),
// segmentStart(n, r + 1, p)), the first n % p segments one float longer. Every rank owns
// its segment; the sum of a segment is added in rank order 0, 1, ..., p-1, so the bits do
// not depend on the transport.
#pragma once
#include <cstdint>

namespace craftgrad {

inline int64_t segmentStart(int64_t n, int r, int p) {
  const int64_t base = n / p, extra = n % p;
  return static_cast<int64_t>(r) * base + (r < extra ? r : extra);
}

}  // namespace craftgrad
