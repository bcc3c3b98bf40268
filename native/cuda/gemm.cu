// CUDA GEMM kernels (stub until the kernels land): every entry point throws E_NOT_IMPLEMENTED.
#include "common/check.h"
#include "common/entry_points.h"

namespace hp {

[[noreturn]] static void not_yet(const Napi::CallbackInfo& info, const char* fn) {
  throw_error(info.Env(), "E_NOT_IMPLEMENTED", std::string(fn) + ": not implemented yet");
}

Napi::Value CudaGemmFp8(const Napi::CallbackInfo& info) { not_yet(info, "cudaGemmFp8"); }
Napi::Value CudaMatmul(const Napi::CallbackInfo& info) { not_yet(info, "cudaMatmul"); }
Napi::Value CudaTranspose(const Napi::CallbackInfo& info) { not_yet(info, "cudaTranspose"); }

}  // namespace hp
