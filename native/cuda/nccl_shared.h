// What native/cuda/nccl.cu shares with native/cuda/nccl_lsa.cu (which includes NCCL's own headers and
// so cannot see nccl.cu's ABI declarations): the opened library, the communicator table, the side and
// barrier streams, and tickets.
#pragma once

#include <cuda_runtime.h>

#include "common/check.h"

namespace hp {

// A symbol of the opened libnccl, or nullptr where the library lacks it; E_BACKEND when no libnccl
// could be opened (the message says how to get one).
void* nccl_symbol(Napi::Env env, const char* fn, const char* name);

// The opened library's version code (2.28.3 -> 22803), 0 if unknown.
int nccl_version();

// Argument i as a live communicator (E_ARG otherwise): the ncclComm_t, its rank and size.
struct NcclCommRef {
  void* comm;
  int rank, size;
};
NcclCommRef nccl_comm_ref(const Args& args, size_t i);

// The side stream (created on first use, the device's highest priority).
cudaStream_t nccl_side_stream(Napi::Env env, const char* fn);

// The barrier stream, after it has been made to wait for the work queued so far on the addon's stream
// (main) and/or the side stream (side).
cudaStream_t nccl_barrier_stream_after(Napi::Env env, const char* fn, bool main, bool side);

// A ticket for ncclSideWait standing for the work queued on `s` so far.
uint32_t nccl_ticket(Napi::Env env, const char* fn, cudaStream_t s);

// "<fn>: <what> failed: <NCCL's error string> (ncclResult r)…", thrown as E_NATIVE.
[[noreturn]] void nccl_throw(Napi::Env env, const char* fn, const char* what, int r, void* comm);

}  // namespace hp
