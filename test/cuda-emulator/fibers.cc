// See fibers.h. One CTA at a time: every kernel runs under the runtime's lock, so the
// state of the running CTA is a file-level global.
#include "fibers.h"

#include "context_switch.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <vector>

namespace cgemu {
namespace {

constexpr size_t kStackBytes = 256 * 1024;
constexpr int kWarp = 32;

enum class State { Runnable, Waiting, Exited };

struct Fiber {
  FiberContext context;
  State state = State::Runnable;
  Builtins builtins{};
  int warp = 0, lane = 0;
};

struct Barrier {
  int arrived = 0;
  Site site{nullptr, 0};
  std::vector<int> waiting;
};

struct Warp {
  int present = 0, alive = 0;
  Barrier barrier;
  std::array<std::uint64_t, kWarp> slots{};
};

// A stack per fiber, with a guard page below it; kept for the life of the process.
class Stacks {
 public:
  char* get(size_t i) {
    while (stacks_.size() <= i) {
      const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
      void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) {
        std::fprintf(stderr, "cgemu: cannot map a fiber stack\n");
        std::abort();
      }
      mprotect(p, page, PROT_NONE);
      stacks_.push_back(static_cast<char*>(p) + page);
    }
    return stacks_[i];
  }

 private:
  std::vector<char*> stacks_;
};

struct Cta {
  KernelBody* body = nullptr;
  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  Barrier barrier;
  int alive = 0;
  int current = -1;
  FiberContext scheduler;
  std::string error;  // the first thing that went wrong
};

Cta* g_cta = nullptr;
Stacks g_stacks;
const Builtins g_hostBuiltins{};

bool sameSite(Site a, Site b) { return a.line == b.line && std::strcmp(a.file, b.file) == 0; }

std::string where(Site s) { return std::string(s.file) + ":" + std::to_string(s.line); }

void fail(Cta& cta, const std::string& what) {
  if (cta.error.empty()) cta.error = what;
}

Fiber& self() { return g_cta->fibers[static_cast<size_t>(g_cta->current)]; }

// Everyone waiting at `b` may go on.
void release(Cta& cta, Barrier& b) {
  for (int i : b.waiting) cta.fibers[static_cast<size_t>(i)].state = State::Runnable;
  b.waiting.clear();
  b.arrived = 0;
}

// The calling fiber arrives at `b`, which opens when `expected` fibers have arrived.
void arrive(Cta& cta, Barrier& b, int expected, Site site, const char* what) {
  if (b.arrived == 0) {
    b.site = site;
  } else if (!sameSite(b.site, site)) {
    fail(cta, std::string("threads of one ") + what + " wait at different call sites: " + where(b.site) + " and " +
                  where(site) + " (undefined behaviour in CUDA)");
  }
  ++b.arrived;
  if (b.arrived >= expected) {
    release(cta, b);
    return;
  }
  Fiber& f = self();
  b.waiting.push_back(cta.current);
  f.state = State::Waiting;
  switchContext(f.context, cta.scheduler);
}

// A fiber that returned no longer counts at the barriers; one that everyone else already
// waits at opens.
void exitFiber() {
  Cta& cta = *g_cta;
  Fiber& f = self();
  f.state = State::Exited;
  --cta.alive;
  Warp& w = cta.warps[static_cast<size_t>(f.warp)];
  --w.alive;
  if (cta.barrier.arrived > 0 && cta.barrier.arrived >= cta.alive) release(cta, cta.barrier);
  if (w.barrier.arrived > 0 && w.barrier.arrived >= w.alive) {
    fail(cta, "a thread returned while others of its warp wait at a shuffle at " + where(w.barrier.site) +
                  " (undefined behaviour in CUDA)");
    release(cta, w.barrier);
  }
  FiberContext dead;  // never resumed
  switchContext(dead, cta.scheduler);
  __builtin_unreachable();
}

void fiberMain() {
  g_cta->body->runThread();
  exitFiber();
}

std::uint64_t nextRandom(std::uint64_t* s) {  // splitmix64
  std::uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

const Schedule& schedule() {
  static const Schedule s = [] {
    Schedule out;
    const char* e = std::getenv("CGEMU_SCHEDULE");
    if (e == nullptr || std::strcmp(e, "forward") == 0 || *e == '\0') return out;
    if (std::strcmp(e, "reverse") == 0) {
      out.order = Order::Reverse;
    } else if (std::strncmp(e, "random", 6) == 0) {
      out.order = Order::Random;
      if (e[6] == ':') out.seed = std::strtoull(e + 7, nullptr, 10);
    } else {
      std::fprintf(stderr, "cgemu: CGEMU_SCHEDULE must be forward, reverse or random[:seed], got '%s'\n", e);
      std::abort();
    }
    return out;
  }();
  return s;
}

void arrange(std::vector<std::uint64_t>& order, std::uint64_t n, std::uint64_t* rngState) {
  order.resize(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), std::uint64_t{0});
  const Order o = schedule().order;
  if (o == Order::Reverse) std::reverse(order.begin(), order.end());
  if (o == Order::Random)
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[nextRandom(rngState) % i]);
}

const Builtins& builtins() {
  if (g_cta == nullptr || g_cta->current < 0) return g_hostBuiltins;
  return self().builtins;
}

void syncThreads(Site site) {
  if (g_cta == nullptr) return;
  arrive(*g_cta, g_cta->barrier, g_cta->alive, site, "CTA at __syncthreads");
}

std::uint64_t shuffle(unsigned mask, std::uint64_t bits, ShuffleKind kind, int arg, int width, Site site) {
  if (g_cta == nullptr) return bits;
  Cta& cta = *g_cta;
  Fiber& f = self();
  Warp& w = cta.warps[static_cast<size_t>(f.warp)];
  const unsigned presentMask = w.present == kWarp ? 0xffffffffu : ((1u << w.present) - 1u);
  if ((mask & presentMask) != presentMask || w.alive != w.present) {
    // Every present lane must take part: partial masks are not emulated.
    fail(cta, "shuffle at " + where(site) + " with mask 0x" + [&] {
      char buf[16];
      std::snprintf(buf, sizeof buf, "%08x", mask);
      return std::string(buf);
    }() + " does not cover every live lane of its warp (not emulated; check the mask)");
  }
  if (width <= 0 || width > kWarp || (width & (width - 1)) != 0) fail(cta, "shuffle width must be a power of 2 up to 32 at " + where(site));
  w.slots[static_cast<size_t>(f.lane)] = bits;
  arrive(cta, w.barrier, w.alive, site, "warp at a shuffle");
  const int seg = f.lane / width * width, pos = f.lane - seg;
  int src = f.lane;
  switch (kind) {
    case ShuffleKind::Down: src = pos + arg < width ? f.lane + arg : f.lane; break;
    case ShuffleKind::Up: src = pos - arg >= 0 ? f.lane - arg : f.lane; break;
    case ShuffleKind::Xor: src = seg + ((pos ^ arg) % width); break;
    case ShuffleKind::Index: src = seg + ((arg % width + width) % width); break;
  }
  std::uint64_t out = bits;
  if (src >= w.present) fail(cta, "shuffle at " + where(site) + " reads lane " + std::to_string(src) + ", which does not exist in this CTA");
  else out = w.slots[static_cast<size_t>(src)];
  arrive(cta, w.barrier, w.alive, site, "warp at a shuffle");
  return out;
}

// The bounds of the cgemu_shared section (every __shared__ variable of this binary), from
// the linker; weak, so that a binary without shared memory links too.
extern "C" char __start_cgemu_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_cgemu_shared[] __attribute__((weak, visibility("hidden")));

// A CTA's shared memory starts as garbage: all-ones bytes (NaN floats, -1 integers), as
// fresh device memory does (runtime.cc), so a read of what no thread of this CTA wrote
// shows, instead of reading zeros or what the previous CTA left.
void poisonSharedMemory() {
  if (__start_cgemu_shared == nullptr || __stop_cgemu_shared == nullptr) return;
  std::memset(__start_cgemu_shared, 0xff, static_cast<size_t>(__stop_cgemu_shared - __start_cgemu_shared));
}

std::string runBlock(KernelBody& body, dim3 grid, dim3 block, uint3 blockIndex, std::uint64_t* rngState) {
  // Kept between CTAs (a launch may have a million of them): only the contents change.
  static Cta cta;
  static std::vector<std::uint64_t> order;
  cta.body = &body;
  cta.error.clear();
  cta.barrier = Barrier{};
  cta.current = -1;
  const int n = static_cast<int>(block.x * block.y * block.z);
  const int nWarps = (n + kWarp - 1) / kWarp;
  cta.fibers.resize(static_cast<size_t>(n));
  cta.warps.assign(static_cast<size_t>(nWarps), Warp{});
  for (int i = 0; i < n; ++i) {
    Fiber& f = cta.fibers[static_cast<size_t>(i)];
    const unsigned u = static_cast<unsigned>(i);
    f.state = State::Runnable;
    f.builtins.thread = {u % block.x, u / block.x % block.y, u / (block.x * block.y)};
    f.builtins.block = blockIndex;
    f.builtins.blockSize = block;
    f.builtins.gridSize = grid;
    f.warp = i / kWarp;
    f.lane = i % kWarp;
    ++cta.warps[static_cast<size_t>(f.warp)].present;
    char* stack = g_stacks.get(static_cast<size_t>(i));
#if defined(__SANITIZE_ADDRESS__)
    // The last fiber on this stack left its frames' redzones poisoned.
    ASAN_UNPOISON_MEMORY_REGION(stack, kStackBytes);
#endif
    prepareContext(f.context, stack, kStackBytes, fiberMain);
  }
  for (Warp& w : cta.warps) w.alive = w.present;
  cta.alive = n;

  const bool reshuffle = schedule().order == Order::Random;  // a new order for every pass
  arrange(order, static_cast<std::uint64_t>(n), rngState);

  poisonSharedMemory();
  g_cta = &cta;
  while (cta.alive > 0) {
    if (reshuffle) arrange(order, static_cast<std::uint64_t>(n), rngState);
    bool ran = false;
    for (const std::uint64_t i : order) {
      if (cta.fibers[static_cast<size_t>(i)].state != State::Runnable) continue;
      cta.current = static_cast<int>(i);
      switchContext(cta.scheduler, cta.fibers[static_cast<size_t>(i)].context);
      cta.current = -1;
      ran = true;
    }
    if (!ran) {
      fail(cta, "deadlock: " + std::to_string(cta.alive) + " threads wait forever (" +
                    (cta.barrier.arrived > 0 ? "__syncthreads at " + where(cta.barrier.site) + " not reached by all"
                                             : std::string("a shuffle not reached by the whole warp")) +
                    ")");
      break;  // the waiting fibers are abandoned; their stacks are reused
    }
  }
  g_cta = nullptr;
  return cta.error;
}

}  // namespace cgemu
