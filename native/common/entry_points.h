// Every function the addon exports, by the name JS sees (registered in native/addon.cc).
#pragma once

#include <napi.h>

namespace hp {

// native/common/info.cc
Napi::Value BuildInfo(const Napi::CallbackInfo& info);
Napi::Value SetThreads(const Napi::CallbackInfo& info);

// native/cpu/fp8.cc: every one returns Promise<void> and runs on a worker thread
Napi::Value CpuFp8Encode(const Napi::CallbackInfo& info);
Napi::Value CpuFp8Decode(const Napi::CallbackInfo& info);
Napi::Value CpuFp8Quantize(const Napi::CallbackInfo& info);
Napi::Value CpuFp8Dequantize(const Napi::CallbackInfo& info);
Napi::Value CpuCopy(const Napi::CallbackInfo& info);

// native/cpu/gemm.cc: Promise<void>, on the thread pool (cpuBlasInfo returns a string at once)
Napi::Value CpuGemmFp8(const Napi::CallbackInfo& info);
Napi::Value CpuMatmul(const Napi::CallbackInfo& info);
Napi::Value CpuTranspose(const Napi::CallbackInfo& info);
Napi::Value CpuBlasInfo(const Napi::CallbackInfo& info);
Napi::Value CpuBlasSgemm(const Napi::CallbackInfo& info);

// native/cpu/logprob.cc: Promise<void>, on the thread pool
Napi::Value CpuLogprobForward(const Napi::CallbackInfo& info);
Napi::Value CpuLogprobBackward(const Napi::CallbackInfo& info);
Napi::Value CpuKl(const Napi::CallbackInfo& info);

// native/cpu/grpo.cc: Promise<void>, on a worker thread (the loss splits sequences over the pool)
Napi::Value CpuGrpoAdvantages(const Napi::CallbackInfo& info);
Napi::Value CpuGrpoLoss(const Napi::CallbackInfo& info);
Napi::Value CpuGrpoFusedTokenLoss(const Napi::CallbackInfo& info);

// native/cpu/nn.cc: small calls run at once and return undefined (sumSquares: a number); larger ones
// return a Promise and run on the thread pool
Napi::Value CpuNnEmbedding(const Napi::CallbackInfo& info);
Napi::Value CpuNnEmbeddingBackward(const Napi::CallbackInfo& info);
Napi::Value CpuNnRmsnorm(const Napi::CallbackInfo& info);
Napi::Value CpuNnRmsnormBackward(const Napi::CallbackInfo& info);
Napi::Value CpuNnRope(const Napi::CallbackInfo& info);
Napi::Value CpuNnAttention(const Napi::CallbackInfo& info);
Napi::Value CpuNnAttentionBackward(const Napi::CallbackInfo& info);
Napi::Value CpuNnSwiglu(const Napi::CallbackInfo& info);
Napi::Value CpuNnSwigluBackward(const Napi::CallbackInfo& info);
Napi::Value CpuNnAddScaled(const Napi::CallbackInfo& info);
Napi::Value CpuNnSumSquares(const Napi::CallbackInfo& info);
Napi::Value CpuNnAdamw(const Napi::CallbackInfo& info);
Napi::Value CpuNnSample(const Napi::CallbackInfo& info);

// native/cpu/moe.cc: Promise<void> (cpuMoeAuxLoss: Promise<number>), on the thread pool
Napi::Value CpuMoeRoute(const Napi::CallbackInfo& info);
Napi::Value CpuMoeRouteBackward(const Napi::CallbackInfo& info);
Napi::Value CpuMoeUpdateBias(const Napi::CallbackInfo& info);
Napi::Value CpuMoeAuxLoss(const Napi::CallbackInfo& info);
Napi::Value CpuMoeLayout(const Napi::CallbackInfo& info);
Napi::Value CpuMoeAlign(const Napi::CallbackInfo& info);
Napi::Value CpuMoePermute(const Napi::CallbackInfo& info);
Napi::Value CpuMoePermuteBytes(const Napi::CallbackInfo& info);
Napi::Value CpuMoeUnpermute(const Napi::CallbackInfo& info);
Napi::Value CpuMoeUnpermuteWeightGrad(const Napi::CallbackInfo& info);

// native/cpu/ceiling.cc: Promise<number> (FLOPs done), runs on the thread pool
Napi::Value CpuPeakFlops(const Napi::CallbackInfo& info);

// native/cuda/memory.cu (or native/cuda/no_cuda.cc when built without CUDA)
Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info);
Napi::Value CudaDeviceInfo(const Napi::CallbackInfo& info);
Napi::Value CudaMalloc(const Napi::CallbackInfo& info);
Napi::Value CudaFree(const Napi::CallbackInfo& info);
Napi::Value CudaMemset(const Napi::CallbackInfo& info);
Napi::Value CudaUpload(const Napi::CallbackInfo& info);
Napi::Value CudaDownload(const Napi::CallbackInfo& info);
Napi::Value CudaCopy(const Napi::CallbackInfo& info);
Napi::Value CudaSynchronize(const Napi::CallbackInfo& info);
Napi::Value CudaTimerStart(const Napi::CallbackInfo& info);
Napi::Value CudaTimerStop(const Napi::CallbackInfo& info);

// native/cuda/fp8.cu (or native/cuda/no_cuda.cc): launch on the addon's stream and return at once
Napi::Value CudaFp8Encode(const Napi::CallbackInfo& info);
Napi::Value CudaFp8Decode(const Napi::CallbackInfo& info);
Napi::Value CudaFp8Quantize(const Napi::CallbackInfo& info);
Napi::Value CudaFp8Dequantize(const Napi::CallbackInfo& info);

// native/cuda/gemm.cu (or native/cuda/no_cuda.cc): launch on the addon's stream and return at once
Napi::Value CudaGemmFp8(const Napi::CallbackInfo& info);
Napi::Value CudaMatmul(const Napi::CallbackInfo& info);
Napi::Value CudaTranspose(const Napi::CallbackInfo& info);

// native/cuda/logprob.cu (or native/cuda/no_cuda.cc): launch on the addon's stream and return at once
Napi::Value CudaLogprobForward(const Napi::CallbackInfo& info);
Napi::Value CudaLogprobBackward(const Napi::CallbackInfo& info);
Napi::Value CudaKl(const Napi::CallbackInfo& info);

// native/cuda/grpo.cu (or native/cuda/no_cuda.cc): launch on the addon's stream and return at once
Napi::Value CudaGrpoAdvantages(const Napi::CallbackInfo& info);
Napi::Value CudaGrpoLoss(const Napi::CallbackInfo& info);
Napi::Value CudaGrpoFusedTokenLoss(const Napi::CallbackInfo& info);
Napi::Value CudaGrpoFusedWeights(const Napi::CallbackInfo& info);
Napi::Value CudaGrpoFusedStatSums(const Napi::CallbackInfo& info);

// native/cuda/nn.cu (or native/cuda/no_cuda.cc): launch on the addon's stream and return at once
Napi::Value CudaNnEmbedding(const Napi::CallbackInfo& info);
Napi::Value CudaNnEmbeddingBackward(const Napi::CallbackInfo& info);
Napi::Value CudaNnRmsnorm(const Napi::CallbackInfo& info);
Napi::Value CudaNnRmsnormBackward(const Napi::CallbackInfo& info);
Napi::Value CudaNnRope(const Napi::CallbackInfo& info);
Napi::Value CudaNnAttention(const Napi::CallbackInfo& info);
Napi::Value CudaNnAttentionBackward(const Napi::CallbackInfo& info);
Napi::Value CudaNnSwiglu(const Napi::CallbackInfo& info);
Napi::Value CudaNnSwigluBackward(const Napi::CallbackInfo& info);
Napi::Value CudaNnAddScaled(const Napi::CallbackInfo& info);
Napi::Value CudaNnSumSquares(const Napi::CallbackInfo& info);
Napi::Value CudaNnAdamw(const Napi::CallbackInfo& info);
Napi::Value CudaNnSample(const Napi::CallbackInfo& info);

// native/cuda/ceiling.cu (or native/cuda/no_cuda.cc): launches on the addon's stream, returns at once
Napi::Value CudaPeakFlops(const Napi::CallbackInfo& info);

// native/cuda/moe.cu (or native/cuda/no_cuda.cc): launch on the addon's stream and return at once
Napi::Value CudaMoeRoute(const Napi::CallbackInfo& info);
Napi::Value CudaMoeRouteBackward(const Napi::CallbackInfo& info);
Napi::Value CudaMoeUpdateBias(const Napi::CallbackInfo& info);
Napi::Value CudaMoeAuxLoss(const Napi::CallbackInfo& info);
Napi::Value CudaMoeLayout(const Napi::CallbackInfo& info);
Napi::Value CudaMoeAlignWorkBytes(const Napi::CallbackInfo& info);
Napi::Value CudaMoeAlign(const Napi::CallbackInfo& info);
Napi::Value CudaMoePermute(const Napi::CallbackInfo& info);
Napi::Value CudaMoePermuteBytes(const Napi::CallbackInfo& info);
Napi::Value CudaMoeUnpermute(const Napi::CallbackInfo& info);
Napi::Value CudaMoeUnpermuteWeightGrad(const Napi::CallbackInfo& info);

// native/cuda/moe_dispatch.cu (or native/cuda/no_cuda.cc): dispatch's device path; launch on the
// addon's stream and return at once
Napi::Value CudaMoeDispatchPlanWorkBytes(const Napi::CallbackInfo& info);
Napi::Value CudaMoeDispatchPlan(const Napi::CallbackInfo& info);
Napi::Value CudaMoeDispatchPack(const Napi::CallbackInfo& info);
Napi::Value CudaMoeDispatchRecvLayout(const Napi::CallbackInfo& info);
Napi::Value CudaMoeDispatchScatter(const Napi::CallbackInfo& info);
Napi::Value CudaMoeWindowsDispatchStart(const Napi::CallbackInfo& info);
Napi::Value CudaMoeWindowsDispatchScatter(const Napi::CallbackInfo& info);

// native/cuda/nccl.cu (or native/cuda/no_cuda.cc): libnccl opened at run time; ncclSendRecv launches
// on the addon's stream and returns at once, ncclCommInit blocks until every rank has joined
Napi::Value NcclInfo(const Napi::CallbackInfo& info);
Napi::Value NcclGetUniqueId(const Napi::CallbackInfo& info);
Napi::Value NcclCommInit(const Napi::CallbackInfo& info);
Napi::Value NcclSendRecv(const Napi::CallbackInfo& info);
Napi::Value NcclCommDestroy(const Napi::CallbackInfo& info);
Napi::Value NcclSendRecvSide(const Napi::CallbackInfo& info);
Napi::Value NcclSideWait(const Napi::CallbackInfo& info);
Napi::Value NcclSideReadStart(const Napi::CallbackInfo& info);
Napi::Value NcclSideReadFinish(const Napi::CallbackInfo& info);
Napi::Value CudaLaunchOnSide(const Napi::CallbackInfo& info);
Napi::Value NcclTraceMark(const Napi::CallbackInfo& info);
Napi::Value NcclTraceRead(const Napi::CallbackInfo& info);
// native/cuda/nccl_lsa.cu: NCCL's device API (symmetric buffer, LSA barrier), where built with its headers
Napi::Value NcclLsaInfo(const Napi::CallbackInfo& info);
Napi::Value NcclLsaCreate(const Napi::CallbackInfo& info);
Napi::Value NcclLsaBarrier(const Napi::CallbackInfo& info);
Napi::Value NcclLsaDestroy(const Napi::CallbackInfo& info);

// native/cpu/fp8.cc: which CPU kernels this machine runs ("avx2+fma+avx512f", "avx2+fma" or "scalar")
const char* cpu_simd_name();

}  // namespace hp
