#include "mpi_comm.h"

#include <dlfcn.h>
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace craftgrad {
namespace mpi {

namespace {

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw MpiError(std::string("craftgrad: ") + what + " failed: " + std::string(text, len));
}

void requireLive() {
  int done = 0;
  MPI_Finalized(&done);
  if (done) throw MpiError("craftgrad: MPI was already finalized in this process");
  int up = 0;
  MPI_Initialized(&up);
  if (!up) throw MpiError("craftgrad: MPI is not initialised (call mpi.init() first)");
}

// Node loads the addon without RTLD_GLOBAL, and Open MPI's plugins (dlopened by libmpi)
// need libmpi's symbols globally visible: promote the already-loaded library, as mpi4py does.
void promoteLibmpi() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&MPI_Init_thread), &info) && info.dli_fname) {
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  }
}

// Every rank's value of one count, checked equal (one small all-gather).
void requireSameCount(int64_t n, const char* what) {
  const int p = size();
  std::vector<long long> all(p);
  long long mine = n;
  check(MPI_Allgather(&mine, 1, MPI_LONG_LONG, all.data(), 1, MPI_LONG_LONG, MPI_COMM_WORLD), "MPI_Allgather");
  for (int r = 0; r < p; ++r) {
    if (all[r] != all[0]) {
      throw MpiError(std::string("craftgrad: ") + what + " differs across ranks: rank 0 has " + std::to_string(all[0]) +
                     ", rank " + std::to_string(r) + " has " + std::to_string(all[r]));
    }
  }
}

}  // namespace

bool compiled() { return true; }

std::string libraryVersion() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  if (MPI_Get_library_version(text, &len) != MPI_SUCCESS) return "";
  std::string s(text, len);
  const size_t eol = s.find_first_of("\r\n,");
  return eol == std::string::npos ? s : s.substr(0, eol);
}

void init() {
  int done = 0;
  MPI_Finalized(&done);
  if (done) throw MpiError("craftgrad: MPI was already finalized in this process; it cannot be initialised again");
  int up = 0;
  MPI_Initialized(&up);
  if (up) return;
  promoteLibmpi();
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
}

bool initialized() {
  int up = 0;
  MPI_Initialized(&up);
  return up != 0;
}

bool finalized() {
  int done = 0;
  MPI_Finalized(&done);
  return done != 0;
}

int rank() {
  requireLive();
  int r = 0;
  check(MPI_Comm_rank(MPI_COMM_WORLD, &r), "MPI_Comm_rank");
  return r;
}

int size() {
  requireLive();
  int s = 0;
  check(MPI_Comm_size(MPI_COMM_WORLD, &s), "MPI_Comm_size");
  return s;
}

namespace {

// The segments of n floats over the ranks, as MPI's int counts and displacements.
struct Segments {
  std::vector<int> counts, displs;
  int me = 0, p = 1;
  Segments(int64_t n) {
    p = size();
    me = rank();
    if (n > INT_MAX) throw MpiError("craftgrad: more than 2^31 floats in one reduction; reduce fewer at a time");
    counts.resize(p);
    displs.resize(p);
    for (int r = 0; r < p; ++r) {
      displs[r] = static_cast<int>(segmentStart(n, r, p));
      counts[r] = static_cast<int>(segmentStart(n, r + 1, p) - segmentStart(n, r, p));
    }
  }
  int mine() const { return counts[me]; }
};

// Every rank agrees whether any rank found its arguments bad (so all throw together).
bool anyRank(bool bad) {
  int mine = bad ? 1 : 0, any = 0;
  check(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  return any != 0;
}

}  // namespace

// Floats of each rank's segment exchanged per round. The rounds bound the receive buffer
// (p × 4 MB, reused, never zero-filled) and keep what a round receives in cache for its sum:
// one all-to-all of whole segments allocated and zeroed a copy of the whole set per call.
// The bits do not depend on it: every element is still the sum of ranks 0, 1, ..., N-1 in order.
constexpr int kRoundFloats = 1 << 20;

void reduceScatterInRankOrder(float* data, int64_t n) {
  requireLive();
  requireSameCount(n, "the number of floats to reduce");
  if (size() == 1 || n == 0) return;
  const Segments s(n);
  const int p = s.p, mine = s.mine();
  int longest = 0;
  for (int r = 0; r < p; ++r) longest = std::max(longest, s.counts[r]);
  // One buffer per process, grown once (only the JS thread calls these).
  static std::unique_ptr<float[]> recv;
  static size_t recvFloats = 0;
  const size_t need = static_cast<size_t>(std::min(longest, kRoundFloats)) * p;
  if (recvFloats < need) {
    recv.reset(new float[need]);
    recvFloats = need;
  }
  std::vector<int> sendCounts(p), sendDispls(p), recvCounts(p), recvDispls(p);
  float* seg = data + s.displs[s.me];
  // The same number of rounds on every rank: the longest segment's.
  for (int at = 0; at < longest; at += kRoundFloats) {
    const int take = std::max(0, std::min(kRoundFloats, mine - at));
    for (int r = 0; r < p; ++r) {
      // To rank r: this round's part of r's segment; from every rank: this round's part of mine.
      sendCounts[r] = std::max(0, std::min(kRoundFloats, s.counts[r] - at));
      sendDispls[r] = s.displs[r] + std::min(at, s.counts[r]);
      recvCounts[r] = take;
      recvDispls[r] = r * take;
    }
    check(MPI_Alltoallv(data, sendCounts.data(), sendDispls.data(), MPI_FLOAT, recv.get(), recvCounts.data(),
                        recvDispls.data(), MPI_FLOAT, MPI_COMM_WORLD),
          "MPI_Alltoallv");
    float* out = seg + at;
    std::memcpy(out, recv.get(), sizeof(float) * take);
    for (int r = 1; r < p; ++r) {
      const float* x = recv.get() + static_cast<size_t>(r) * take;
      for (int i = 0; i < take; ++i) out[i] += x[i];
    }
  }
}

void allgatherSegments(float* data, int64_t n) {
  requireLive();
  requireSameCount(n, "the number of floats to gather");
  if (size() == 1 || n == 0) return;
  const Segments s(n);
  check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, data, s.counts.data(), s.displs.data(), MPI_FLOAT,
                       MPI_COMM_WORLD),
        "MPI_Allgatherv");
}

void sumInRankOrder(float* data, int64_t n) {
  reduceScatterInRankOrder(data, n);
  allgatherSegments(data, n);
}

void gatherSegments(const float* segment, int64_t segmentLength, float* full, int64_t n, int root) {
  requireLive();
  requireSameCount(n, "the number of floats to gather");
  const int p = size();
  if (root < 0 || root >= p) throw MpiError("craftgrad: gather root " + std::to_string(root) + " is not a rank (0.." + std::to_string(p - 1) + ")");
  const Segments s(n);
  const bool bad = segmentLength != s.mine();
  if (anyRank(bad)) {
    throw MpiError("craftgrad: gatherSegments of " + std::to_string(n) + " floats: a rank's segment has the wrong length (this rank's: " +
                   std::to_string(segmentLength) + ", its segment: " + std::to_string(s.mine()) + ")");
  }
  if (s.me == root) {
    if (s.mine() > 0) std::memmove(full + s.displs[s.me], segment, sizeof(float) * s.mine());
    check(MPI_Gatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full, s.counts.data(), s.displs.data(), MPI_FLOAT, root,
                      MPI_COMM_WORLD),
          "MPI_Gatherv");
  } else {
    check(MPI_Gatherv(segment, s.mine(), MPI_FLOAT, nullptr, nullptr, nullptr, MPI_FLOAT, root, MPI_COMM_WORLD),
          "MPI_Gatherv");
  }
}

void allreduceSum(float* data, int64_t n) {
  requireLive();
  requireSameCount(n, "the number of floats to reduce");
  for (int64_t done = 0; done < n;) {
    const int chunk = static_cast<int>(std::min<int64_t>(n - done, INT_MAX));
    check(MPI_Allreduce(MPI_IN_PLACE, data + done, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
    done += chunk;
  }
}

void broadcast(void* data, int64_t bytes, int root) {
  requireLive();
  const int p = size();
  if (root < 0 || root >= p) throw MpiError("craftgrad: broadcast root " + std::to_string(root) + " is not a rank (0.." + std::to_string(p - 1) + ")");
  long long rootBytes = bytes;
  check(MPI_Bcast(&rootBytes, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD), "MPI_Bcast");
  // Every rank learns whether any rank's size differs, so all throw together.
  int bad = rootBytes != bytes ? 1 : 0, anyBad = 0;
  check(MPI_Allreduce(&bad, &anyBad, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  if (anyBad) {
    throw MpiError("craftgrad: broadcast of " + std::to_string(rootBytes) + " bytes from rank " + std::to_string(root) +
                   ": a rank's buffer has another size (this rank's: " + std::to_string(bytes) + ")");
  }
  char* p8 = static_cast<char*>(data);
  for (int64_t done = 0; done < bytes;) {
    const int chunk = static_cast<int>(std::min<int64_t>(bytes - done, INT_MAX));
    check(MPI_Bcast(p8 + done, chunk, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    done += chunk;
  }
}

std::vector<double> allgather(const double* values, int64_t k) {
  requireLive();
  requireSameCount(k, "the number of values to gather");
  if (k > INT_MAX) throw MpiError("craftgrad: too many values to gather");
  std::vector<double> out(static_cast<size_t>(k) * size());
  check(MPI_Allgather(values, static_cast<int>(k), MPI_DOUBLE, out.data(), static_cast<int>(k), MPI_DOUBLE, MPI_COMM_WORLD),
        "MPI_Allgather");
  return out;
}

void barrier() {
  requireLive();
  check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void abort(int code) {
  if (initialized() && !finalized()) MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

void finalize() {
  if (!initialized() || finalized()) return;
  check(MPI_Finalize(), "MPI_Finalize");
}

}  // namespace mpi
}  // namespace craftgrad
