// The MPI interface of a build without MPI (CRAFTGRAD_MPI=OFF, or none found): it says so.
#include <cstdlib>

#include "mpi_comm.h"

namespace craftgrad {
namespace mpi {

namespace {
[[noreturn]] void none() {
  throw MpiError("craftgrad: this build has no MPI support (install an MPI implementation, e.g. Debian's libopenmpi-dev, "
                 "and rebuild craftgrad: `craftgrad info` gives the command for this installation; see README \"Troubleshooting\")");
}
}  // namespace

bool compiled() { return false; }
std::string libraryVersion() { return ""; }
void init() { none(); }
bool initialized() { return false; }
bool finalized() { return false; }
int rank() { none(); }
int size() { none(); }
void sumInRankOrder(float*, int64_t) { none(); }
void allreduceSum(float*, int64_t) { none(); }
void reduceScatterInRankOrder(float*, int64_t) { none(); }
void allgatherSegments(float*, int64_t) { none(); }
void gatherSegments(const float*, int64_t, float*, int64_t, int) { none(); }
void broadcast(void*, int64_t, int) { none(); }
std::vector<double> allgather(const double*, int64_t) { none(); }
void barrier() { none(); }
void abort(int code) { std::_Exit(code); }
void finalize() {}

}  // namespace mpi
}  // namespace craftgrad
