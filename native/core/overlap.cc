#include "overlap.h"

#include <algorithm>

namespace craftgrad {

const char* roleName(Role r) {
  switch (r) {
    case Role::Act: return "act";
    case Role::Ret: return "ret";
    case Role::Out: return "out";
  }
  return "?";
}

namespace {

bool byAddress(const MemRange& x, const MemRange& y) {
  if (x.begin != y.begin) return x.begin < y.begin;
  if (x.end != y.end) return x.end < y.end;
  return static_cast<int>(x.role) < static_cast<int>(y.role);
}

// Sorts the concatenation of per-role runs, merging them when each run is already sorted.
void sortRanges(std::vector<MemRange>& v) {
  std::vector<size_t> runStarts{0};
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i].role != v[i - 1].role) runStarts.push_back(i);
  runStarts.push_back(v.size());
  bool runsSorted = true;
  for (size_t r = 0; r + 1 < runStarts.size() && runsSorted; ++r)
    runsSorted = std::is_sorted(v.begin() + runStarts[r], v.begin() + runStarts[r + 1], byAddress);
  if (!runsSorted) {
    std::sort(v.begin(), v.end(), byAddress);
    return;
  }
  for (size_t r = 1; r + 1 < runStarts.size(); ++r)
    std::inplace_merge(v.begin(), v.begin() + runStarts[r], v.begin() + runStarts[r + 1], byAddress);
}

}  // namespace

OverlapIssue findForbiddenOverlap(std::vector<MemRange>& ranges) {
  OverlapIssue issue;
  sortRanges(ranges);
  // Identical ranges form a group. A group is fine if it holds at most one output and
  // every input in it belongs to that output's own tensor (or it holds no output).
  // Distinct groups that overlap are forbidden when either contains an output.
  const MemRange* maxEndAny = nullptr;  // previous group reaching furthest
  const MemRange* maxEndOut = nullptr;  // previous output group reaching furthest
  size_t i = 0;
  while (i < ranges.size()) {
    size_t j = i;
    const MemRange* out = nullptr;
    while (j < ranges.size() && ranges[j].begin == ranges[i].begin && ranges[j].end == ranges[i].end) {
      if (ranges[j].role == Role::Out) {
        if (out) {
          issue = {true, *out, ranges[j]};
          return issue;
        }
        out = &ranges[j];
      }
      ++j;
    }
    if (out) {
      for (size_t g = i; g < j; ++g)
        if (ranges[g].role != Role::Out && ranges[g].index != out->index) {
          issue = {true, *out, ranges[g]};
          return issue;
        }
    }
    const MemRange& head = out ? *out : ranges[i];
    if (out && maxEndAny && maxEndAny->end > head.begin) {
      issue = {true, *maxEndAny, head};
      return issue;
    }
    if (!out && maxEndOut && maxEndOut->end > head.begin) {
      issue = {true, *maxEndOut, head};
      return issue;
    }
    if (!maxEndAny || head.end > maxEndAny->end) maxEndAny = &head;
    if (out && (!maxEndOut || head.end > maxEndOut->end)) maxEndOut = &head;
    i = j;
  }
  return issue;
}

}  // namespace craftgrad
