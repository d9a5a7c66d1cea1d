#include "cublaslt_library.h"

#include <dlfcn.h>
#include <glob.h>
#include <link.h>
#include <sys/stat.h>

#include <cstdlib>
#include <mutex>
#include <vector>

namespace craftgrad {
namespace cublaslt {

namespace {

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

bool isFile(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Step 4 of cublaslt_library.h: the nvidia wheels' lib folders under the usual prefixes.
std::vector<std::string> wheelCandidates() {
  std::vector<std::string> prefixes;
  auto add = [&](std::string p) {
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    if (p.empty()) return;
    for (const std::string& q : prefixes)
      if (q == p) return;
    prefixes.push_back(p);
  };
  for (const char* var : {"VIRTUAL_ENV", "CONDA_PREFIX"})
    if (const char* v = std::getenv(var)) add(v);
  if (const char* path = std::getenv("PATH")) {
    std::string all(path);
    size_t start = 0;
    while (start <= all.size()) {
      const size_t end = all.find(':', start);
      const std::string dir = all.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (dir.size() > 4 && dir.compare(dir.size() - 4, 4, "/bin") == 0) add(dir.substr(0, dir.size() - 4));
      if (end == std::string::npos) break;
      start = end + 1;
    }
  }
  if (const char* home = std::getenv("HOME")) add(std::string(home) + "/.local");
  add("/usr/local");
  add("/usr");
  std::vector<std::string> found;
  for (const std::string& prefix : prefixes) {
    for (const char* so : {"libcublasLt.so.13", "libcublasLt.so.12"}) {
      const std::string pattern = prefix + "/lib/python3*/*-packages/nvidia/{cu13/lib,cublas/lib}/" + so;
      glob_t g{};
      if (glob(pattern.c_str(), GLOB_BRACE | GLOB_NOSORT, nullptr, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; ++i) found.push_back(g.gl_pathv[i]);
      }
      globfree(&g);
    }
  }
  return found;
}

Loaded load() {
  Loaded r;
  const char* override = std::getenv("CRAFTGRAD_CUBLASLT_LIBRARY");
  const bool named = override != nullptr && *override != '\0';
  void* handle = nullptr;
  std::string tried;
  auto attempt = [&](const std::string& name) {
    if (handle) return;
    // RTLD_LOCAL: cuBLASLt's own symbols stay out of the process's global scope.
    handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle) return;
    const char* why = dlerror();
    tried += std::string(tried.empty() ? "" : "; ") + (why ? why : name);
  };
  if (named) {
    attempt(override);
  } else {
    attempt("libcublasLt.so.13");
    attempt("libcublasLt.so.12");
    // Absolute paths are tried only where a file exists (their dlerror would say no more).
    for (const char* p : {"/usr/local/cuda/lib64/libcublasLt.so.13", "/usr/local/cuda/lib64/libcublasLt.so.12"})
      if (!handle && isFile(p)) attempt(p);
    if (!handle)
      for (const std::string& p : wheelCandidates()) attempt(p);
  }
  if (!handle) {
    r.error = std::string("craftgrad: cuBLASLt could not be loaded (") + tried + ")" +
              (named ? " — CRAFTGRAD_CUBLASLT_LIBRARY names that file"
                     : "; also looked in /usr/local/cuda/lib64 and in PyTorch's nvidia wheels: install the CUDA toolkit's "
                       "libcublas (or pip's nvidia-cublas) and put its lib folder on LD_LIBRARY_PATH, or set "
                       "CRAFTGRAD_CUBLASLT_LIBRARY to the path of libcublasLt.so.13 or .so.12");
    return r;
  }
  Library& l = r.lib;
  link_map* map = nullptr;
  l.path = dlinfo(handle, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name ? map->l_name : "";
  std::string missing;
  const bool ok = resolve(handle, "cublasLtGetVersion", &l.getVersion, &missing) &&
                  resolve(handle, "cublasLtCreate", &l.create, &missing) &&
                  resolve(handle, "cublasLtDestroy", &l.destroy, &missing) &&
                  resolve(handle, "cublasLtMatmulDescCreate", &l.matmulDescCreate, &missing) &&
                  resolve(handle, "cublasLtMatmulDescDestroy", &l.matmulDescDestroy, &missing) &&
                  resolve(handle, "cublasLtMatmulDescSetAttribute", &l.matmulDescSetAttribute, &missing) &&
                  resolve(handle, "cublasLtMatrixLayoutCreate", &l.matrixLayoutCreate, &missing) &&
                  resolve(handle, "cublasLtMatrixLayoutDestroy", &l.matrixLayoutDestroy, &missing) &&
                  resolve(handle, "cublasLtMatmulPreferenceCreate", &l.preferenceCreate, &missing) &&
                  resolve(handle, "cublasLtMatmulPreferenceDestroy", &l.preferenceDestroy, &missing) &&
                  resolve(handle, "cublasLtMatmulPreferenceSetAttribute", &l.preferenceSetAttribute, &missing) &&
                  resolve(handle, "cublasLtMatmulAlgoGetHeuristic", &l.algoGetHeuristic, &missing) &&
                  resolve(handle, "cublasLtMatmulAlgoConfigGetAttribute", &l.algoConfigGetAttribute, &missing) &&
                  resolve(handle, "cublasLtMatmul", &l.matmul, &missing);
  if (!ok) {
    r.error = "craftgrad: " + l.path + " is not a usable cuBLASLt: " + missing;
    dlclose(handle);
    return r;
  }
  std::string unused;
  resolve(handle, "cublasLtGetStatusName", &l.getStatusName, &unused);
  resolve(handle, "cublasLtGetStatusString", &l.getStatusString, &unused);
  l.versionCode = l.getVersion();
  if (l.versionCode < kOldestVersionCode) {
    // Before 12 the code was major·1000 + minor·100 + patch (ambiguous past minor 9): say it raw.
    r.error = "craftgrad: " + l.path + " is a cuBLASLt older than 12 (cublasLtGetVersion() = " + std::to_string(l.versionCode) +
              "); craftgrad needs cuBLASLt 12 or newer";
    dlclose(handle);
    return r;
  }
  return r;  // the handle stays open for the life of the process
}

const Loaded& loaded() {
  static std::once_flag once;
  static Loaded* l = nullptr;
  std::call_once(once, [] { l = new Loaded(load()); });  // never freed: cuBLASLt may be in use at exit
  return *l;
}

const char* statusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "an unknown cublasStatus_t";
  }
}

}  // namespace

std::string Library::version() const {
  // CUBLAS_VERSION: major·10000 + minor·100 + patch since cuBLAS 12 (major·1000 + ... before,
  // which kOldestVersionCode refuses).
  const size_t c = versionCode;
  return std::to_string(c / 10000) + "." + std::to_string((c / 100) % 100) + "." + std::to_string(c % 100);
}

void Library::check(cublasStatus_t s, const char* call) const {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  const char* name = getStatusName ? getStatusName(s) : nullptr;
  const char* text = getStatusString ? getStatusString(s) : nullptr;
  throw CublasLtError(std::string("craftgrad: ") + call + " failed: " + (name ? name : statusName(s)) +
                      (text && *text ? std::string(" (") + text + ")" : std::string()) + ", cublasStatus_t " +
                      std::to_string(static_cast<int>(s)));
}

const Library& library() {
  const Loaded& l = loaded();
  if (!l.error.empty()) throw CublasLtError(l.error);
  return l.lib;
}

bool available(std::string* why) {
  const Loaded& l = loaded();
  if (why) *why = l.error;
  return l.error.empty();
}

}  // namespace cublaslt
}  // namespace craftgrad
