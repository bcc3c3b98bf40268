// hotpaths native addon: registration only. The kernels live in native/cpu/ and native/cuda/.
#include <napi.h>

#include "common/entry_points.h"

static void add(Napi::Env env, Napi::Object exports, const char* name, Napi::Function::Callback fn) {
  exports.Set(name, Napi::Function::New(env, fn, name));
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  add(env, exports, "buildInfo", hp::BuildInfo);
  add(env, exports, "setThreads", hp::SetThreads);

  add(env, exports, "cpuFp8Encode", hp::CpuFp8Encode);
  add(env, exports, "cpuFp8Decode", hp::CpuFp8Decode);
  add(env, exports, "cpuFp8Quantize", hp::CpuFp8Quantize);
  add(env, exports, "cpuFp8Dequantize", hp::CpuFp8Dequantize);
  add(env, exports, "cpuCopy", hp::CpuCopy);
  add(env, exports, "cpuGemmFp8", hp::CpuGemmFp8);
  add(env, exports, "cpuMatmul", hp::CpuMatmul);
  add(env, exports, "cpuTranspose", hp::CpuTranspose);
  add(env, exports, "cpuBlasInfo", hp::CpuBlasInfo);
  add(env, exports, "cpuBlasSgemm", hp::CpuBlasSgemm);
  add(env, exports, "cpuLogprobForward", hp::CpuLogprobForward);
  add(env, exports, "cpuLogprobBackward", hp::CpuLogprobBackward);
  add(env, exports, "cpuKl", hp::CpuKl);
  add(env, exports, "cpuGrpoAdvantages", hp::CpuGrpoAdvantages);
  add(env, exports, "cpuGrpoLoss", hp::CpuGrpoLoss);
  add(env, exports, "cpuGrpoFusedTokenLoss", hp::CpuGrpoFusedTokenLoss);
  add(env, exports, "cpuPeakFlops", hp::CpuPeakFlops);
  add(env, exports, "cpuNnEmbedding", hp::CpuNnEmbedding);
  add(env, exports, "cpuNnEmbeddingBackward", hp::CpuNnEmbeddingBackward);
  add(env, exports, "cpuNnRmsnorm", hp::CpuNnRmsnorm);
  add(env, exports, "cpuNnRmsnormBackward", hp::CpuNnRmsnormBackward);
  add(env, exports, "cpuNnRope", hp::CpuNnRope);
  add(env, exports, "cpuNnAttention", hp::CpuNnAttention);
  add(env, exports, "cpuNnAttentionBackward", hp::CpuNnAttentionBackward);
  add(env, exports, "cpuNnSwiglu", hp::CpuNnSwiglu);
  add(env, exports, "cpuNnSwigluBackward", hp::CpuNnSwigluBackward);
  add(env, exports, "cpuNnAddScaled", hp::CpuNnAddScaled);
  add(env, exports, "cpuNnSumSquares", hp::CpuNnSumSquares);
  add(env, exports, "cpuNnAdamw", hp::CpuNnAdamw);
  add(env, exports, "cpuNnSample", hp::CpuNnSample);
  add(env, exports, "cpuMoeRoute", hp::CpuMoeRoute);
  add(env, exports, "cpuMoeRouteBackward", hp::CpuMoeRouteBackward);
  add(env, exports, "cpuMoeUpdateBias", hp::CpuMoeUpdateBias);
  add(env, exports, "cpuMoeAuxLoss", hp::CpuMoeAuxLoss);
  add(env, exports, "cpuMoeLayout", hp::CpuMoeLayout);
  add(env, exports, "cpuMoeAlign", hp::CpuMoeAlign);
  add(env, exports, "cpuMoePermute", hp::CpuMoePermute);
  add(env, exports, "cpuMoePermuteBytes", hp::CpuMoePermuteBytes);
  add(env, exports, "cpuMoeUnpermute", hp::CpuMoeUnpermute);
  add(env, exports, "cpuMoeUnpermuteWeightGrad", hp::CpuMoeUnpermuteWeightGrad);

  add(env, exports, "cudaDeviceCount", hp::CudaDeviceCount);
  add(env, exports, "cudaDeviceInfo", hp::CudaDeviceInfo);
  add(env, exports, "cudaMalloc", hp::CudaMalloc);
  add(env, exports, "cudaFree", hp::CudaFree);
  add(env, exports, "cudaMemset", hp::CudaMemset);
  add(env, exports, "cudaUpload", hp::CudaUpload);
  add(env, exports, "cudaDownload", hp::CudaDownload);
  add(env, exports, "cudaCopy", hp::CudaCopy);
  add(env, exports, "cudaSynchronize", hp::CudaSynchronize);
  add(env, exports, "cudaTimerStart", hp::CudaTimerStart);
  add(env, exports, "cudaTimerStop", hp::CudaTimerStop);

  add(env, exports, "cudaFp8Encode", hp::CudaFp8Encode);
  add(env, exports, "cudaFp8Decode", hp::CudaFp8Decode);
  add(env, exports, "cudaFp8Quantize", hp::CudaFp8Quantize);
  add(env, exports, "cudaFp8Dequantize", hp::CudaFp8Dequantize);
  add(env, exports, "cudaGemmFp8", hp::CudaGemmFp8);
  add(env, exports, "cudaMatmul", hp::CudaMatmul);
  add(env, exports, "cudaTranspose", hp::CudaTranspose);
  add(env, exports, "cudaPeakFlops", hp::CudaPeakFlops);
  add(env, exports, "cudaLogprobForward", hp::CudaLogprobForward);
  add(env, exports, "cudaLogprobBackward", hp::CudaLogprobBackward);
  add(env, exports, "cudaKl", hp::CudaKl);
  add(env, exports, "cudaGrpoAdvantages", hp::CudaGrpoAdvantages);
  add(env, exports, "cudaGrpoLoss", hp::CudaGrpoLoss);
  add(env, exports, "cudaGrpoFusedTokenLoss", hp::CudaGrpoFusedTokenLoss);
  add(env, exports, "cudaGrpoFusedWeights", hp::CudaGrpoFusedWeights);
  add(env, exports, "cudaGrpoFusedStatSums", hp::CudaGrpoFusedStatSums);
  add(env, exports, "cudaMoeRoute", hp::CudaMoeRoute);
  add(env, exports, "cudaMoeRouteBackward", hp::CudaMoeRouteBackward);
  add(env, exports, "cudaMoeUpdateBias", hp::CudaMoeUpdateBias);
  add(env, exports, "cudaMoeAuxLoss", hp::CudaMoeAuxLoss);
  add(env, exports, "cudaMoeLayout", hp::CudaMoeLayout);
  add(env, exports, "cudaMoeAlignWorkBytes", hp::CudaMoeAlignWorkBytes);
  add(env, exports, "cudaMoeAlign", hp::CudaMoeAlign);
  add(env, exports, "cudaMoePermute", hp::CudaMoePermute);
  add(env, exports, "cudaMoePermuteBytes", hp::CudaMoePermuteBytes);
  add(env, exports, "cudaMoeUnpermute", hp::CudaMoeUnpermute);
  add(env, exports, "cudaMoeUnpermuteWeightGrad", hp::CudaMoeUnpermuteWeightGrad);
  add(env, exports, "ncclInfo", hp::NcclInfo);
  add(env, exports, "ncclGetUniqueId", hp::NcclGetUniqueId);
  add(env, exports, "ncclCommInit", hp::NcclCommInit);
  add(env, exports, "ncclSendRecv", hp::NcclSendRecv);
  add(env, exports, "ncclCommDestroy", hp::NcclCommDestroy);
  add(env, exports, "cudaNnEmbedding", hp::CudaNnEmbedding);
  add(env, exports, "cudaNnEmbeddingBackward", hp::CudaNnEmbeddingBackward);
  add(env, exports, "cudaNnRmsnorm", hp::CudaNnRmsnorm);
  add(env, exports, "cudaNnRmsnormBackward", hp::CudaNnRmsnormBackward);
  add(env, exports, "cudaNnRope", hp::CudaNnRope);
  add(env, exports, "cudaNnAttention", hp::CudaNnAttention);
  add(env, exports, "cudaNnAttentionBackward", hp::CudaNnAttentionBackward);
  add(env, exports, "cudaNnSwiglu", hp::CudaNnSwiglu);
  add(env, exports, "cudaNnSwigluBackward", hp::CudaNnSwigluBackward);
  add(env, exports, "cudaNnAddScaled", hp::CudaNnAddScaled);
  add(env, exports, "cudaNnSumSquares", hp::CudaNnSumSquares);
  add(env, exports, "cudaNnAdamw", hp::CudaNnAdamw);
  add(env, exports, "cudaNnSample", hp::CudaNnSample);
  add(env, exports, "cudaMoeDispatchPlanWorkBytes", hp::CudaMoeDispatchPlanWorkBytes);
  add(env, exports, "cudaMoeDispatchPlan", hp::CudaMoeDispatchPlan);
  add(env, exports, "cudaMoeDispatchPack", hp::CudaMoeDispatchPack);
  add(env, exports, "cudaMoeDispatchRecvLayout", hp::CudaMoeDispatchRecvLayout);
  add(env, exports, "cudaMoeDispatchScatter", hp::CudaMoeDispatchScatter);
  add(env, exports, "cudaMoeWindowsDispatchStart", hp::CudaMoeWindowsDispatchStart);
  add(env, exports, "cudaMoeWindowsDispatchScatter", hp::CudaMoeWindowsDispatchScatter);
  add(env, exports, "ncclSendRecvSide", hp::NcclSendRecvSide);
  add(env, exports, "ncclSideWait", hp::NcclSideWait);
  add(env, exports, "ncclSideReadStart", hp::NcclSideReadStart);
  add(env, exports, "ncclSideReadFinish", hp::NcclSideReadFinish);
  add(env, exports, "cudaLaunchOnSide", hp::CudaLaunchOnSide);
  add(env, exports, "ncclTraceMark", hp::NcclTraceMark);
  add(env, exports, "ncclTraceRead", hp::NcclTraceRead);
  add(env, exports, "ncclLsaInfo", hp::NcclLsaInfo);
  add(env, exports, "ncclLsaCreate", hp::NcclLsaCreate);
  add(env, exports, "ncclLsaBarrier", hp::NcclLsaBarrier);
  add(env, exports, "ncclLsaDestroy", hp::NcclLsaDestroy);
  return exports;
}

NODE_API_MODULE(hotpaths, Init)
