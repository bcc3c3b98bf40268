// buildInfo() and setThreads(): what was built, and the size of the CPU thread pool.
#include <string>

#include "common/check.h"
#include "common/entry_points.h"
#include "common/threadpool.h"

#ifndef HOTPATHS_CUDA_ARCHS
#define HOTPATHS_CUDA_ARCHS ""
#endif
#ifndef HOTPATHS_CUDA_VERSION
#define HOTPATHS_CUDA_VERSION ""
#endif
#ifndef HOTPATHS_CXX_COMPILER
#define HOTPATHS_CXX_COMPILER "unknown"
#endif

namespace hp {

// buildInfo(): { cuda, cudaArchs, cudaVersion, simd, compiler, threads }
Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
#if defined(HOTPATHS_CUDA)
  out.Set("cuda", Napi::Boolean::New(env, true));
#else
  out.Set("cuda", Napi::Boolean::New(env, false));
#endif
  out.Set("cudaArchs", Napi::String::New(env, HOTPATHS_CUDA_ARCHS));
  out.Set("cudaVersion", Napi::String::New(env, HOTPATHS_CUDA_VERSION));
  out.Set("simd", Napi::String::New(env, cpu_simd_name()));
  out.Set("compiler", Napi::String::New(env, HOTPATHS_CXX_COMPILER));
  out.Set("threads", Napi::Number::New(env, thread_pool().size()));
  return out;
}

// setThreads(n): resize the CPU pool (n >= 1 threads, the calling worker included).
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Args args(info, "setThreads", 1);
  const uint64_t n = args.size(0, "n");
  if (n < 1 || n > 1024) args.fail("E_ARG", "n must be between 1 and 1024, got " + std::to_string(n));
  thread_pool().resize((int)n);
  return info.Env().Undefined();
}

}  // namespace hp
