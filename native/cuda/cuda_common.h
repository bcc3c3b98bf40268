// What the CUDA files share: the addon's stream, the allocation table's checked lookup, error checks.
// Implemented in native/cuda/memory.cu.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "common/check.h"

namespace hp {

// Throws E_NATIVE "<fn>: <what> failed: <cudaGetErrorString>" unless err is cudaSuccess.
void cuda_check(Napi::Env env, const char* fn, const char* what, cudaError_t err);

// Makes sure a device is there and the stream exists (E_BACKEND otherwise); returns the stream.
cudaStream_t cuda_stream(Napi::Env env, const char* fn);

// The addon's own stream, whatever cuda_set_launch_stream says.
cudaStream_t cuda_main_stream(Napi::Env env, const char* fn);

// Routes what cuda_stream() returns — the stream every kernel and copy is queued on — to `s` until it is
// called again with nullptr (native/cuda/nccl.cu: the side stream, for the work of one expert-parallel
// op that must run beside the addon's stream). Only kernel launches are made meanwhile.
void cuda_set_launch_stream(cudaStream_t s);

// Enters (or removes) a device range not from cudaMalloc in the allocation table, so that kernels may
// take pointers into it (native/cuda/nccl_lsa.cu: NCCL's symmetric windows, this rank's and its peers').
// cudaFree never gets such a pointer: no tensor owns it.
void cuda_table_add(uint64_t p, uint64_t bytes);
void cuda_table_remove(uint64_t p);

// Multiprocessors of the stream's device (for grid sizes); valid after cuda_stream().
int cuda_sm_count();

// The stream's device (0, HOTPATHS_CUDA_DEVICE or HOTPATHS_LOCAL_RANK); valid after cuda_stream().
int cuda_device();

// Argument i as a device pointer: it must lie inside a live allocation from cudaMalloc (the base, or
// inside it for a tensor view) with at least `need_bytes` bytes from there to the allocation's end
// (E_ARG / E_SHAPE otherwise).
void* cuda_device_arg(const Args& args, size_t i, const char* name, uint64_t need_bytes);

// cuda_device_arg for a pointer value p read some other way (an element of a BigUint64Array).
void* cuda_device_ptr(const Args& args, const char* name, uint64_t p, uint64_t need_bytes);

// Like cuda_device_arg, but 0n stands for "none" and gives nullptr.
inline void* cuda_device_arg_or_null(const Args& args, size_t i, const char* name, uint64_t need_bytes) {
  if (args.bigint(i, name) == 0) return nullptr;
  return cuda_device_arg(args, i, name, need_bytes);
}

}  // namespace hp
