#include "nccl_library.h"

#include <dlfcn.h>
#include <link.h>

#include <cstdlib>
#include <mutex>

namespace craftgrad {
namespace nccl {

namespace {

// ncclSend/ncclRecv, which the rank-order collectives are built from, appeared in 2.7.
constexpr int kOldestVersionCode = 2700;

struct Loaded {
  Library lib;
  std::string error;  // non-empty when loading failed
};

template <typename Fn>
bool resolve(void* handle, const char* name, Fn* out, std::string* error) {
  *out = reinterpret_cast<Fn>(dlsym(handle, name));
  if (*out == nullptr) *error = std::string("it has no ") + name;
  return *out != nullptr;
}

Loaded load() {
  Loaded r;
  const char* override = std::getenv("CRAFTGRAD_NCCL_LIBRARY");
  const bool named = override != nullptr && *override != '\0';
  const char* candidates[] = {named ? override : "libnccl.so.2", named ? nullptr : "libnccl.so"};
  void* handle = nullptr;
  std::string tried;
  for (const char* name : candidates) {
    if (name == nullptr) continue;
    // RTLD_LOCAL: NCCL's own symbols stay out of the process's global scope.
    handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (handle) break;
    const char* why = dlerror();
    tried += std::string(tried.empty() ? "" : "; ") + (why ? why : name);
  }
  if (!handle) {
    r.error = std::string("craftgrad: NCCL could not be loaded (") + tried + ")" +
              (named ? " — CRAFTGRAD_NCCL_LIBRARY names that file"
                     : ": install NCCL (NVIDIA's libnccl2 package, or PyTorch's nvidia-nccl wheel) and put its lib folder on "
                       "LD_LIBRARY_PATH, or set CRAFTGRAD_NCCL_LIBRARY to the path of libnccl.so.2");
    return r;
  }
  Library& l = r.lib;
  link_map* map = nullptr;
  l.path = dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name ? map->l_name : "";
  std::string missing;
  const bool ok = resolve(handle, "ncclGetVersion", &l.getVersion, &missing) &&
                  resolve(handle, "ncclGetUniqueId", &l.getUniqueId, &missing) &&
                  resolve(handle, "ncclCommInitRank", &l.commInitRank, &missing) &&
                  resolve(handle, "ncclCommDestroy", &l.commDestroy, &missing) &&
                  resolve(handle, "ncclCommAbort", &l.commAbort, &missing) &&
                  resolve(handle, "ncclCommGetAsyncError", &l.commGetAsyncError, &missing) &&
                  resolve(handle, "ncclGetErrorString", &l.getErrorString, &missing) &&
                  resolve(handle, "ncclGroupStart", &l.groupStart, &missing) &&
                  resolve(handle, "ncclGroupEnd", &l.groupEnd, &missing) && resolve(handle, "ncclSend", &l.send, &missing) &&
                  resolve(handle, "ncclRecv", &l.recv, &missing);
  if (!ok) {
    r.error = "craftgrad: " + l.path + " is not a usable NCCL: " + missing;
    dlclose(handle);
    return r;
  }
  if (l.getVersion(&l.versionCode) != ncclSuccess || l.versionCode < kOldestVersionCode) {
    r.error = "craftgrad: " + l.path + " is NCCL " + l.version() + "; craftgrad needs NCCL 2.7 or newer (ncclSend/ncclRecv)";
    dlclose(handle);
    return r;
  }
  return r;  // the handle stays open for the life of the process
}

const Loaded& loaded() {
  static std::once_flag once;
  static Loaded* l = nullptr;
  std::call_once(once, [] { l = new Loaded(load()); });  // never freed: NCCL may be in use at exit
  return *l;
}

}  // namespace

std::string Library::version() const {
  // NCCL_VERSION(X,Y,Z): X*1000 + Y*100 + Z before 2.9, X*10000 + Y*100 + Z since.
  const int c = versionCode;
  const int major = c >= 10000 ? c / 10000 : c / 1000;
  const int minor = c >= 10000 ? (c / 100) % 100 : (c / 100) % 10;
  return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(c % 100);
}

void Library::check(ncclResult_t r, const char* call) const {
  if (r == ncclSuccess) return;
  const char* text = getErrorString ? getErrorString(r) : nullptr;
  throw NcclError(std::string("craftgrad: ") + call + " failed: " + (text ? text : "unknown NCCL error") + " (ncclResult_t " +
                  std::to_string(static_cast<int>(r)) + ")");
}

const Library& library() {
  const Loaded& l = loaded();
  if (!l.error.empty()) throw NcclError(l.error);
  return l.lib;
}

bool available(std::string* why) {
  const Loaded& l = loaded();
  if (why) *why = l.error;
  return l.error.empty();
}

}  // namespace nccl
}  // namespace craftgrad
