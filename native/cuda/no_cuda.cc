// The cuda* entry points of a build without CUDA (no nvcc, or HOTPATHS_NO_CUDA set):
// cudaDeviceCount() returns 0 and every other one throws E_BACKEND.
#include "common/check.h"
#include "common/entry_points.h"

namespace hp {

[[noreturn]] static void no_cuda(const Napi::CallbackInfo& info, const char* fn) {
  throw_error(info.Env(), "E_BACKEND", std::string(fn) + ": hotpaths was built without CUDA");
}

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), 0); }
Napi::Value CudaDeviceInfo(const Napi::CallbackInfo& info) { no_cuda(info, "cudaDeviceInfo"); }
Napi::Value CudaMalloc(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMalloc"); }
Napi::Value CudaFree(const Napi::CallbackInfo& info) { no_cuda(info, "cudaFree"); }
Napi::Value CudaMemset(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMemset"); }
Napi::Value CudaUpload(const Napi::CallbackInfo& info) { no_cuda(info, "cudaUpload"); }
Napi::Value CudaDownload(const Napi::CallbackInfo& info) { no_cuda(info, "cudaDownload"); }
Napi::Value CudaCopy(const Napi::CallbackInfo& info) { no_cuda(info, "cudaCopy"); }
Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) { no_cuda(info, "cudaSynchronize"); }
Napi::Value CudaTimerStart(const Napi::CallbackInfo& info) { no_cuda(info, "cudaTimerStart"); }
Napi::Value CudaTimerStop(const Napi::CallbackInfo& info) { no_cuda(info, "cudaTimerStop"); }
Napi::Value CudaFp8Encode(const Napi::CallbackInfo& info) { no_cuda(info, "cudaFp8Encode"); }
Napi::Value CudaFp8Decode(const Napi::CallbackInfo& info) { no_cuda(info, "cudaFp8Decode"); }
Napi::Value CudaFp8Quantize(const Napi::CallbackInfo& info) { no_cuda(info, "cudaFp8Quantize"); }
Napi::Value CudaFp8Dequantize(const Napi::CallbackInfo& info) { no_cuda(info, "cudaFp8Dequantize"); }
Napi::Value CudaGemmFp8(const Napi::CallbackInfo& info) { no_cuda(info, "cudaGemmFp8"); }
Napi::Value CudaMatmul(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMatmul"); }
Napi::Value CudaTranspose(const Napi::CallbackInfo& info) { no_cuda(info, "cudaTranspose"); }
Napi::Value CudaPeakFlops(const Napi::CallbackInfo& info) { no_cuda(info, "cudaPeakFlops"); }
Napi::Value CudaLogprobForward(const Napi::CallbackInfo& info) { no_cuda(info, "cudaLogprobForward"); }
Napi::Value CudaLogprobBackward(const Napi::CallbackInfo& info) { no_cuda(info, "cudaLogprobBackward"); }
Napi::Value CudaKl(const Napi::CallbackInfo& info) { no_cuda(info, "cudaKl"); }
Napi::Value CudaGrpoAdvantages(const Napi::CallbackInfo& info) { no_cuda(info, "cudaGrpoAdvantages"); }
Napi::Value CudaGrpoLoss(const Napi::CallbackInfo& info) { no_cuda(info, "cudaGrpoLoss"); }
Napi::Value CudaGrpoFusedTokenLoss(const Napi::CallbackInfo& info) { no_cuda(info, "cudaGrpoFusedTokenLoss"); }
Napi::Value CudaGrpoFusedWeights(const Napi::CallbackInfo& info) { no_cuda(info, "cudaGrpoFusedWeights"); }
Napi::Value CudaGrpoFusedStatSums(const Napi::CallbackInfo& info) { no_cuda(info, "cudaGrpoFusedStatSums"); }
Napi::Value CudaMoeRoute(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeRoute"); }
Napi::Value CudaMoeRouteBackward(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeRouteBackward"); }
Napi::Value CudaMoeUpdateBias(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeUpdateBias"); }
Napi::Value CudaMoeAuxLoss(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeAuxLoss"); }
Napi::Value CudaMoeLayout(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeLayout"); }
Napi::Value CudaMoeAlignWorkBytes(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeAlignWorkBytes"); }
Napi::Value CudaMoeAlign(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeAlign"); }
Napi::Value CudaMoePermute(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoePermute"); }
Napi::Value CudaMoePermuteBytes(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoePermuteBytes"); }
Napi::Value CudaMoeUnpermute(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeUnpermute"); }
Napi::Value CudaMoeUnpermuteWeightGrad(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeUnpermuteWeightGrad"); }
Napi::Value CudaMoeDispatchPlanWorkBytes(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeDispatchPlanWorkBytes"); }
Napi::Value CudaMoeDispatchPlan(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeDispatchPlan"); }
Napi::Value CudaMoeDispatchPack(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeDispatchPack"); }
Napi::Value CudaMoeDispatchRecvLayout(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeDispatchRecvLayout"); }
Napi::Value CudaMoeDispatchScatter(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeDispatchScatter"); }
Napi::Value CudaMoeWindowsDispatchStart(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeWindowsDispatchStart"); }
Napi::Value CudaMoeWindowsDispatchScatter(const Napi::CallbackInfo& info) { no_cuda(info, "cudaMoeWindowsDispatchScatter"); }

// NCCL needs the CUDA part: ncclInfo says so without throwing, the others throw E_BACKEND.
Napi::Value NcclInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("available", Napi::Boolean::New(env, false));
  out.Set("version", Napi::Number::New(env, 0));
  out.Set("library", Napi::String::New(env, ""));
  out.Set("reason", Napi::String::New(env, "hotpaths was built without CUDA, so it cannot drive NCCL (rebuild with nvcc on PATH)"));
  return out;
}
Napi::Value NcclGetUniqueId(const Napi::CallbackInfo& info) { no_cuda(info, "ncclGetUniqueId"); }
Napi::Value NcclCommInit(const Napi::CallbackInfo& info) { no_cuda(info, "ncclCommInit"); }
Napi::Value NcclSendRecv(const Napi::CallbackInfo& info) { no_cuda(info, "ncclSendRecv"); }
Napi::Value NcclCommDestroy(const Napi::CallbackInfo& info) { no_cuda(info, "ncclCommDestroy"); }
Napi::Value CudaNnEmbedding(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnEmbedding"); }
Napi::Value CudaNnEmbeddingBackward(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnEmbeddingBackward"); }
Napi::Value CudaNnRmsnorm(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnRmsnorm"); }
Napi::Value CudaNnRmsnormBackward(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnRmsnormBackward"); }
Napi::Value CudaNnRope(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnRope"); }
Napi::Value CudaNnAttention(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnAttention"); }
Napi::Value CudaNnAttentionBackward(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnAttentionBackward"); }
Napi::Value CudaNnSwiglu(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnSwiglu"); }
Napi::Value CudaNnSwigluBackward(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnSwigluBackward"); }
Napi::Value CudaNnAddScaled(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnAddScaled"); }
Napi::Value CudaNnSumSquares(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnSumSquares"); }
Napi::Value CudaNnAdamw(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnAdamw"); }
Napi::Value CudaNnSample(const Napi::CallbackInfo& info) { no_cuda(info, "cudaNnSample"); }
Napi::Value NcclSendRecvSide(const Napi::CallbackInfo& info) { no_cuda(info, "ncclSendRecvSide"); }
Napi::Value NcclSideWait(const Napi::CallbackInfo& info) { no_cuda(info, "ncclSideWait"); }
Napi::Value NcclSideReadStart(const Napi::CallbackInfo& info) { no_cuda(info, "ncclSideReadStart"); }
Napi::Value NcclSideReadFinish(const Napi::CallbackInfo& info) { no_cuda(info, "ncclSideReadFinish"); }
Napi::Value CudaLaunchOnSide(const Napi::CallbackInfo& info) { no_cuda(info, "cudaLaunchOnSide"); }
Napi::Value NcclTraceMark(const Napi::CallbackInfo& info) { no_cuda(info, "ncclTraceMark"); }
Napi::Value NcclTraceRead(const Napi::CallbackInfo& info) { no_cuda(info, "ncclTraceRead"); }
Napi::Value NcclLsaInfo(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("compiled", Napi::Boolean::New(info.Env(), false));
  out.Set("headerVersion", Napi::Number::New(info.Env(), 0));
  return out;
}
Napi::Value NcclLsaCreate(const Napi::CallbackInfo& info) { no_cuda(info, "ncclLsaCreate"); }
Napi::Value NcclLsaBarrier(const Napi::CallbackInfo& info) { no_cuda(info, "ncclLsaBarrier"); }
Napi::Value NcclLsaDestroy(const Napi::CallbackInfo& info) { no_cuda(info, "ncclLsaDestroy"); }

}  // namespace hp
