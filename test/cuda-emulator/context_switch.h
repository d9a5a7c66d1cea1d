// Switching between the emulator's fibers. On x86-64 a few instructions save the
// callee-saved registers and the stack pointer (swapcontext would also make two
// sigprocmask system calls per switch, which made an emulated launch of a million
// threads take minutes); elsewhere ucontext.
#pragma once
#include <cstddef>
#include <cstdint>

#if defined(__x86_64__) && !defined(CGEMU_USE_UCONTEXT)

extern "C" void cgemu_switch_context(void** saveSp, void* loadSp);

namespace cgemu {

struct FiberContext {
  void* sp = nullptr;
};

// The first switch to `c` enters entry() on the stack [stack, stack + bytes).
inline void prepareContext(FiberContext& c, char* stack, size_t bytes, void (*entry)()) {
  auto top = reinterpret_cast<std::uintptr_t>(stack + bytes) & ~std::uintptr_t{15};
  auto* w = reinterpret_cast<std::uint64_t*>(top);
  // Read upwards by cgemu_switch_context: control words, r15, r14, r13, r12, rbx, rbp, then
  // the return address; entry() starts with rsp = top - 8, as if called.
  w[-1] = 0;
  w[-2] = reinterpret_cast<std::uint64_t>(entry);
  for (int i = 3; i <= 8; ++i) w[-i] = 0;
  w[-9] = 0x1F80ull | (0x037Full << 32);  // MXCSR and x87 control word at their defaults
  c.sp = w - 9;
}

inline void switchContext(FiberContext& from, FiberContext& to) { cgemu_switch_context(&from.sp, to.sp); }

}  // namespace cgemu

#else
#include <ucontext.h>

namespace cgemu {

struct FiberContext {
  ucontext_t uc;
};

inline void prepareContext(FiberContext& c, char* stack, size_t bytes, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}

inline void switchContext(FiberContext& from, FiberContext& to) { swapcontext(&from.uc, &to.uc); }

}  // namespace cgemu
#endif
