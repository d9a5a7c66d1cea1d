#include "backend.h"

namespace craftgrad {

Layout::Layout(std::vector<int64_t> sizes) : sizes_(std::move(sizes)) {
  for (int64_t s : sizes_) total_ += s;
}

}  // namespace craftgrad
