// Detects outputs that overlap inputs or other outputs, before any kernel runs.
// The only overlap allowed is exact aliasing of out[i] with act[i] or ret[i] (the same
// start and length): the kernels are elementwise per tensor, so that is safe, while any
// other overlap would let one tensor's write corrupt another tensor's input.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace craftgrad {

enum class Role : uint8_t { Act = 0, Ret = 1, Out = 2 };

struct MemRange {
  uintptr_t begin, end;  // [begin, end) in bytes
  int64_t index;         // tensor index
  Role role;
};

struct OverlapIssue {
  bool found = false;
  MemRange first{}, second{};  // an offending pair, for the error message
};

// ranges: every non-empty input and output range. O(n) when each role's ranges are
// already in address order (the usual contiguous layouts), O(n log n) otherwise.
OverlapIssue findForbiddenOverlap(std::vector<MemRange>& ranges);

const char* roleName(Role r);

}  // namespace craftgrad
