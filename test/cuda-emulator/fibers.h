// The emulator's CTA executor: runs the threads of one CTA as fibers (ucontext) on the
// calling CPU thread, each until it waits at a barrier or returns, and checks what CUDA
// leaves undefined: divergent __syncthreads, shuffles with absent lanes, deadlocks.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "include/cuda_runtime.h"

namespace cgemu {

// The order in which the CTAs of a grid and the threads of a CTA get the CPU
// (CGEMU_SCHEDULE=forward|reverse|random[:seed]). Results must not depend on it: running
// the tests under two orders finds a missing __syncthreads or an order-dependent sum.
enum class Order { Forward, Reverse, Random };
struct Schedule {
  Order order = Order::Forward;
  std::uint64_t seed = 1;
};
const Schedule& schedule();

// Fills `order` with the order in which `n` CTAs or threads get the CPU under the
// schedule: 0..n-1, reversed, or shuffled with *rngState (splitmix64).
void arrange(std::vector<std::uint64_t>& order, std::uint64_t n, std::uint64_t* rngState);

// Runs one CTA: `body` once per thread with the given built-ins. Returns an empty string,
// or what went wrong (the launch then fails with cudaErrorLaunchFailure).
std::string runBlock(KernelBody& body, dim3 grid, dim3 block, uint3 blockIndex, std::uint64_t* rngState);

}  // namespace cgemu
