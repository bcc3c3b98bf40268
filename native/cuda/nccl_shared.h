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

// The side stream, after it has been made to wait for the work queued so far on the addon's stream.
cudaStream_t nccl_side_after_main(Napi::Env env, const char* fn);

// The barrier stream; with side, after it has been made to wait for the work queued so far on the side
// stream.
cudaStream_t nccl_barrier_stream_after(Napi::Env env, const char* fn, bool side);

// A ticket for ncclSideWait standing for the work queued on `s` so far.
uint32_t nccl_ticket(Napi::Env env, const char* fn, cudaStream_t s);

// The addon's stream waits for a ticket (each ticket once; E_ARG for one not pending): ncclSideWait.
void nccl_main_waits(const Args& args, uint64_t ticket);

// A device -> host read that a kernel writes itself (the windows dispatch's tables: the all-gather's
// kernel stores them into pinned, mapped memory, then seq into the flag word after them), so that no
// copy or event is queued for it. host: the staging's host address; dst, flag: its device addresses.
struct DeviceRead {
  uint8_t* host = nullptr;
  uint32_t* dst = nullptr;
  uint32_t* flag = nullptr;
  size_t cap = 0;
  uint32_t seq = 0;
};
// Staging for a read of `bytes` bytes (from a pool; its flag cleared, a fresh seq).
DeviceRead nccl_device_read_staging(Napi::Env env, const char* fn, uint64_t bytes);
// Once the kernel that writes d is queued on s: the ticket for ncclSideReadFinish (d.seq).
uint32_t nccl_device_read_start(const DeviceRead& d, uint64_t bytes, cudaStream_t s);
// Staging whose kernel was never queued, back to the pool.
void nccl_device_read_give_back(const DeviceRead& d);

// A timing mark on stream s (ncclTraceMark: HOTPATHS_EP_TRACE=1's timeline); its index among the marks.
int nccl_trace_mark(Napi::Env env, const char* fn, cudaStream_t s);

// Argument i as a live LSA buffer of native/cuda/nccl_lsa.cu: its tables' all-gather (src's bytes to
// offset + rank·bytes of every rank's buffer, then barrier `index`, queued on `stream`; one index's
// barriers must never overlap, and ncclLsaBarrier's take index 0), after which the same kernel stores
// this rank's gathered rows (R·bytes at offset) into `read` (nccl_device_read_staging's, for R·bytes)
// and its seq into its flag. E_BACKEND where the addon was built without NCCL's device headers.
void nccl_lsa_all_gather(const Args& args, size_t handle_arg, const void* src, uint64_t bytes, uint64_t offset, cudaStream_t stream, int index,
                         const DeviceRead& read);

// "<fn>: <what> failed: <NCCL's error string> (ncclResult r)…", thrown as E_NATIVE.
[[noreturn]] void nccl_throw(Napi::Env env, const char* fn, const char* what, int r, void* comm);

}  // namespace hp
