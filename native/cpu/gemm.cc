// CPU GEMM kernels (stub until the kernels land): every entry point throws E_NOT_IMPLEMENTED.
#include "common/check.h"
#include "common/entry_points.h"

namespace hp {

[[noreturn]] static void not_yet(const Napi::CallbackInfo& info, const char* fn) {
  throw_error(info.Env(), "E_NOT_IMPLEMENTED", std::string(fn) + ": not implemented yet");
}

Napi::Value CpuGemmFp8(const Napi::CallbackInfo& info) { not_yet(info, "cpuGemmFp8"); }
Napi::Value CpuMatmul(const Napi::CallbackInfo& info) { not_yet(info, "cpuMatmul"); }
Napi::Value CpuTranspose(const Napi::CallbackInfo& info) { not_yet(info, "cpuTranspose"); }
Napi::Value CpuBlasInfo(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), ""); }
Napi::Value CpuBlasSgemm(const Napi::CallbackInfo& info) { not_yet(info, "cpuBlasSgemm"); }

}  // namespace hp
