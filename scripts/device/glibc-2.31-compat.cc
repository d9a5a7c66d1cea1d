// Linked only into addons built with scripts/device/glibc-2.31.cmake. The static libstdc++
// of GCC 12 was compiled against glibc >= 2.36 and refers to two symbols glibc 2.31 lacks.
// These definitions are hidden, so those references bind here, inside the addon, on every
// glibc; nothing outside the addon sees them.
#include <stdint.h>
#include <sys/random.h>  // getrandom: glibc 2.25

extern "C" {

// 0 means "other threads may exist": libstdc++ then always uses atomic reference counts,
// which is correct in a process that has threads (node always has).
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;

// std::random_device's "arc4random" source; craftgrad never asks for it, but the object
// file that holds it is linked in.
__attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t value = 0;
  while (getrandom(&value, sizeof value, 0) != static_cast<ssize_t>(sizeof value)) {
  }
  return value;
}

}
