#include "backend.h"

#include "backend_error.h"

namespace craftgrad {

Layout::Layout(std::vector<int64_t> sizes) : sizes_(std::move(sizes)) {
  for (int64_t s : sizes_) total_ += s;
}

std::unique_ptr<Communicator> Backend::communicator(const CommunicatorInit&) {
  throw BackendError("craftgrad: the " + name() + " backend has no device communicator (its sets are reduced with MPI)",
                     "ERR_CRAFTGRAD_NCCL");
}

}  // namespace craftgrad
