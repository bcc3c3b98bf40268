// NCCL's device API (NCCL >= 2.28: symmetric memory and LSA, "load/store accessible") for expert-parallel
// dispatch/combine between the GPUs of one node (src/native/nccl.ts): one symmetric buffer per
// communicator that every rank's kernels read and write directly (NVLink stores), and NCCL's LSA
// barrier to say when what was written has landed. NCCL makes the buffer (a resource buffer of the
// device communicator), maps every peer's copy, and runs the barrier; nothing here moves bytes between
// GPUs on its own account.
//
// The device code comes from NCCL's headers (nccl_device.h), so this file is compiled with them only
// when CMake finds them (HOTPATHS_NCCL_DEVICE, from HOTPATHS_NCCL_INCLUDE or the system's include
// path); the host functions (ncclDevCommCreate/Destroy) are looked up in the libnccl opened at run time
// (nccl.cu), and used only when its version is the headers' (the device communicator's layout is
// theirs). Elsewhere the entry points report why the device API is missing, and the ops keep to the
// grouped ncclSend/ncclRecv path.
//
// Entry points:
//   ncclLsaInfo(): { compiled, headerVersion }
//   ncclLsaCreate(comm, bytes, zeroFrom): { handle, bases: BigUint64Array [R] } — collective; bases[p] is
//     rank p's copy of the buffer as this GPU addresses it (bases[rank] its own), each entered in the
//     allocation table so that kernels take pointers into them; bytes [zeroFrom, bytes) of every copy
//     are zero when it returns (and before any rank's kernels can store into them: a barrier)
//   ncclLsaBarrier(handle): ticket — the barrier: once it is through on a rank, what every rank queued
//     before its own barrier (kernels' stores into any rank's buffer) is visible there. It runs on
//     nccl.cu's barrier stream after the side stream's work so far (the stores it lands), so that it
//     does not hold up the side stream's next piece; the ticket (for ncclSideWait) stands for it. The
//     barriers of a rank on that one stream never overlap, so one barrier index (0) serves them all.
//   For native/cuda/moe_dispatch.cu (nccl_shared.h): nccl_lsa_all_gather — one CTA: src's bytes to
//     offset + rank·bytes of every rank's buffer, then barrier index 1 (the windows dispatch's tables, on
//     the addon's stream), then this rank's gathered rows into a device-written read's pinned staging,
//     and its flag.
//   ncclLsaDestroy(handle) — collective
#include <string.h>

#include <mutex>
#include <string>
#include <vector>

#include "common/entry_points.h"
#include "cuda/cuda_common.h"
#include "cuda/nccl_shared.h"

#if HOTPATHS_NCCL_DEVICE
#include <nccl.h>
#include <nccl_device.h>
#endif

namespace hp {

#if HOTPATHS_NCCL_DEVICE

namespace {

struct Lsa {
  void* comm = nullptr;  // the ncclComm_t it belongs to
  int rank = 0, size = 0;
  uint64_t bytes = 0;
  ncclDevComm dev;
  ncclDevResourceHandle_t buffer = 0;
  std::vector<uint64_t> bases;
  bool live = false;
};

constexpr int LSA_BARRIERS = 2;  // see lsa_sync

std::mutex g_lsa_mutex;
std::vector<Lsa> g_lsa;  // handle h is g_lsa[h - 1]

Lsa& lsa_arg(const Args& args, size_t i) {
  const uint64_t h = args.size(i, "handle");
  std::lock_guard<std::mutex> lock(g_lsa_mutex);
  if (h == 0 || h > g_lsa.size() || !g_lsa[h - 1].live) args.fail("E_ARG", "handle " + std::to_string(h) + " is not a live LSA buffer");
  return g_lsa[h - 1];
}

// A thread per rank p: rank p's copy of the buffer, as this GPU addresses it.
__global__ void lsa_bases_kernel(ncclDevComm dev, ncclDevResourceHandle_t buffer, uint64_t* out) {
  const int p = threadIdx.x;
  if (p < dev.lsaSize) out[p] = (uint64_t)(uintptr_t)ncclGetResourceBufferLsaPointer(dev, buffer, p);
}

// One CTA: barrier `index` of every rank of the LSA team. Release before, acquire after. The barriers
// of one index never overlap on a rank: index 0 serves every barrier queued on nccl.cu's one barrier
// stream, index 1 the windows dispatch's all-gather of its tables, on the addon's stream.
__device__ __forceinline__ void lsa_sync(const ncclDevComm& dev, int index) {
  ncclLsaBarrierSession<ncclCoopCta> bar(ncclCoopCta(), dev, ncclTeamTagLsa(), (uint32_t)index);
  bar.sync(ncclCoopCta(), cuda::memory_order_acq_rel);
}

// src: u32 [n] -> u32 [n] at byte offset + rank·4n of every rank's buffer; then barrier `index`; then
// this rank's gathered u32 [size·n] at offset into host (pinned, mapped memory), and seq into *flag once
// every thread's stores are fenced at system scope (the host spins on the flag).
__global__ void __launch_bounds__(1024) lsa_all_gather_kernel(ncclDevComm dev, ncclDevResourceHandle_t buffer, const uint32_t* __restrict__ src, int64_t n,
                                                              uint64_t offset, int index, uint32_t* __restrict__ host, uint32_t* flag, uint32_t seq) {
  for (int p = 0; p < dev.lsaSize; p++) {
    uint32_t* dst = (uint32_t*)((char*)ncclGetResourceBufferLsaPointer(dev, buffer, p) + offset) + (int64_t)dev.rank * n;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) dst[i] = src[i];
  }
  lsa_sync(dev, index);
  const uint32_t* mine = (const uint32_t*)((const char*)ncclGetResourceBufferLsaPointer(dev, buffer, dev.rank) + offset);
  for (int64_t i = threadIdx.x; i < (int64_t)dev.lsaSize * n; i += blockDim.x) host[i] = mine[i];
  __threadfence_system();
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence_system();
    *(volatile uint32_t*)flag = seq;
  }
}

__global__ void lsa_barrier_kernel(ncclDevComm dev, int index) { lsa_sync(dev, index); }

typedef ncclResult_t (*DevCommCreateFn)(ncclComm_t, ncclDevCommRequirements_t const*, ncclDevComm_t*);
typedef ncclResult_t (*DevCommDestroyFn)(ncclComm_t, ncclDevComm_t const*);

// Why this build or this libnccl cannot use the device API ("" when it can).
std::string unusable(Napi::Env env, const char* fn) {
  const int have = nccl_version();
  if (have / 100 != NCCL_VERSION_CODE / 100) {
    return "the device API was compiled against NCCL " + std::to_string(NCCL_VERSION_CODE) + "'s headers, but the libnccl opened is " +
           std::to_string(have) + " (the device communicator's layout changes between minor versions): rebuild against that NCCL's headers";
  }
  if (!nccl_symbol(env, fn, "ncclDevCommCreate") || !nccl_symbol(env, fn, "ncclDevCommDestroy")) return "the libnccl opened lacks ncclDevCommCreate";
  return "";
}

}  // namespace

Napi::Value NcclLsaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("compiled", Napi::Boolean::New(env, true));
  out.Set("headerVersion", Napi::Number::New(env, NCCL_VERSION_CODE));
  return out;
}

Napi::Value NcclLsaCreate(const Napi::CallbackInfo& info) {
  const char* fn = "ncclLsaCreate";
  Napi::Env env = info.Env();
  Args args(info, fn, 3);
  const NcclCommRef c = nccl_comm_ref(args, 0);
  const uint64_t bytes = args.size(1, "bytes"), zero_from = args.size(2, "zeroFrom");
  if (bytes == 0 || bytes % 4096 != 0) args.fail("E_ARG", "bytes must be a positive multiple of 4096, got " + std::to_string(bytes));
  if (zero_from > bytes) args.fail("E_ARG", "zeroFrom must be at most bytes (" + std::to_string(bytes) + "), got " + std::to_string(zero_from));
  const std::string why = unusable(env, fn);
  if (!why.empty()) throw_error(env, "E_BACKEND", std::string(fn) + ": " + why);
  auto create = (DevCommCreateFn)nccl_symbol(env, fn, "ncclDevCommCreate");
  cudaStream_t stream = cuda_main_stream(env, fn);
  Lsa l;
  l.comm = c.comm;
  l.rank = c.rank;
  l.size = c.size;
  l.bytes = bytes;
  ncclDevResourceRequirements_t res;
  memset(&res, 0, sizeof(res));
  res.bufferSize = bytes;
  res.bufferAlign = 4096;
  res.outBufferHandle = &l.buffer;
  ncclDevCommRequirements_t reqs;
  memset(&reqs, 0, sizeof(reqs));
  reqs.resourceRequirementsList = &res;
  reqs.lsaBarrierCount = LSA_BARRIERS;
  memset(&l.dev, 0, sizeof(l.dev));
  const ncclResult_t r = create((ncclComm_t)c.comm, &reqs, &l.dev);
  if (r != ncclSuccess) nccl_throw(env, fn, "ncclDevCommCreate", r, c.comm);
  auto destroy_now = [&]() { ((DevCommDestroyFn)nccl_symbol(env, fn, "ncclDevCommDestroy"))((ncclComm_t)c.comm, &l.dev); };
  if (l.dev.lsaSize != c.size || l.dev.lsaRank != c.rank) {
    destroy_now();
    throw_error(env, "E_BACKEND", std::string(fn) + ": only " + std::to_string(l.dev.lsaSize) + " of the " + std::to_string(c.size) +
                                      " ranks can load and store each other's memory (LSA: the GPUs of one node with P2P, e.g. NVLink)");
  }
  uint64_t* d_bases = nullptr;
  cudaError_t err = cudaMalloc(&d_bases, 8 * (size_t)c.size);
  if (err == cudaSuccess) {
    lsa_bases_kernel<<<1, ((c.size + 31) / 32) * 32, 0, stream>>>(l.dev, l.buffer, d_bases);
    l.bases.resize(c.size);
    err = cudaGetLastError();
    if (err == cudaSuccess) err = cudaMemcpyAsync(l.bases.data(), d_bases, 8 * (size_t)c.size, cudaMemcpyDeviceToHost, stream);
    if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
    // [zeroFrom, bytes) of this rank's copy zeroed (the windows dispatch's landing signals start at 0),
    // then a barrier, so that no rank's kernels store into a copy before it is zeroed
    if (err == cudaSuccess && zero_from < bytes) err = cudaMemsetAsync((void*)(uintptr_t)(l.bases[c.rank] + zero_from), 0, bytes - zero_from, stream);
    if (err == cudaSuccess) {
      lsa_barrier_kernel<<<1, 32, 0, stream>>>(l.dev, 0);
      err = cudaGetLastError();
    }
    if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
    cudaFree(d_bases);
  }
  if (err != cudaSuccess) {
    destroy_now();
    cuda_check(env, fn, "reading the buffer's addresses", err);
  }
  for (uint64_t b : l.bases) cuda_table_add(b, bytes);
  l.live = true;
  uint64_t handle;
  {
    std::lock_guard<std::mutex> lock(g_lsa_mutex);
    g_lsa.push_back(l);
    handle = g_lsa.size();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("handle", Napi::Number::New(env, (double)handle));
  Napi::BigUint64Array bases = Napi::BigUint64Array::New(env, c.size);
  for (int p = 0; p < c.size; p++) bases[p] = l.bases[p];
  out.Set("bases", bases);
  return out;
}

void nccl_lsa_all_gather(const Args& args, size_t handle_arg, const void* src, uint64_t bytes, uint64_t offset, cudaStream_t stream, int index,
                         const DeviceRead& read) {
  const Lsa& l = lsa_arg(args, handle_arg);
  if (bytes % 4 != 0 || offset % 4 != 0) args.fail("E_ARG", "bytes and offset must be multiples of 4");
  if (offset + bytes * l.size > l.bytes) args.fail("E_SHAPE", "offset + R·bytes passes the buffer's " + std::to_string(l.bytes) + " bytes");
  if (read.cap < bytes * l.size) args.fail("E_SHAPE", "the read's staging is smaller than R·bytes");
  lsa_all_gather_kernel<<<1, 1024, 0, stream>>>(l.dev, l.buffer, (const uint32_t*)src, (int64_t)(bytes / 4), offset, index, read.dst, read.flag, read.seq);
  cuda_check(args.env(), args.fn(), "kernel launch", cudaGetLastError());
}

Napi::Value NcclLsaBarrier(const Napi::CallbackInfo& info) {
  Args args(info, "ncclLsaBarrier", 1);
  const Lsa& l = lsa_arg(args, 0);
  cudaStream_t stream = nccl_barrier_stream_after(args.env(), args.fn(), true);
  lsa_barrier_kernel<<<1, 32, 0, stream>>>(l.dev, 0);
  cuda_check(args.env(), args.fn(), "kernel launch", cudaGetLastError());
  return Napi::Number::New(info.Env(), nccl_ticket(args.env(), args.fn(), stream));
}

Napi::Value NcclLsaDestroy(const Napi::CallbackInfo& info) {
  const char* fn = "ncclLsaDestroy";
  Napi::Env env = info.Env();
  Args args(info, fn, 1);
  Lsa& l = lsa_arg(args, 0);
  cuda_check(env, fn, "cudaStreamSynchronize", cudaStreamSynchronize(cuda_main_stream(env, fn)));
  cuda_check(env, fn, "cudaStreamSynchronize", cudaStreamSynchronize(nccl_side_stream(env, fn)));
  cuda_check(env, fn, "cudaStreamSynchronize", cudaStreamSynchronize(nccl_barrier_stream_after(env, fn, false)));
  for (uint64_t b : l.bases) cuda_table_remove(b);
  l.live = false;
  const ncclResult_t r = ((DevCommDestroyFn)nccl_symbol(env, fn, "ncclDevCommDestroy"))((ncclComm_t)l.comm, &l.dev);
  if (r != ncclSuccess) nccl_throw(env, fn, "ncclDevCommDestroy", r, l.comm);
  return env.Undefined();
}

#else  // built without NCCL's device headers

[[noreturn]] static void no_lsa(Napi::Env env, const char* fn) {
  throw_error(env, "E_BACKEND",
              std::string(fn) + ": hotpaths was built without NCCL's device API headers (nccl_device.h, NCCL >= 2.28); set HOTPATHS_NCCL_INCLUDE "
                                "to the include directory holding nccl.h and nccl_device.h of the NCCL this machine runs, and rebuild");
}
[[noreturn]] static void no_lsa(const Napi::CallbackInfo& info, const char* fn) { no_lsa(info.Env(), fn); }

Napi::Value NcclLsaInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("compiled", Napi::Boolean::New(env, false));
  out.Set("headerVersion", Napi::Number::New(env, 0));
  return out;
}
Napi::Value NcclLsaCreate(const Napi::CallbackInfo& info) { no_lsa(info, "ncclLsaCreate"); }
Napi::Value NcclLsaBarrier(const Napi::CallbackInfo& info) { no_lsa(info, "ncclLsaBarrier"); }
Napi::Value NcclLsaDestroy(const Napi::CallbackInfo& info) { no_lsa(info, "ncclLsaDestroy"); }
void nccl_lsa_all_gather(const Args& args, size_t, const void*, uint64_t, uint64_t, cudaStream_t, int, const DeviceRead&) { no_lsa(args.env(), args.fn()); }

#endif

}  // namespace hp
