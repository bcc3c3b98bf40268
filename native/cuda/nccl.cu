// NCCL for expert-parallel dispatch/combine (src/native/nccl.ts): one communicator per process, on
// the addon's stream and device. libnccl is opened at run time (dlopen), never linked, so the addon
// builds and loads where NCCL is absent (CI); only these entry points then fail, with E_BACKEND.
// The few NCCL types and functions used are declared here by their documented ABI (nccl.h is not
// needed to build).
//
// Entry points: ncclInfo, ncclGetUniqueId, ncclCommInit, ncclSendRecv (grouped ncclSend/ncclRecv of
// byte ranges, one pair per peer), ncclCommDestroy; and for transfers that overlap other work (the
// device path of dispatch/combine): ncclSendRecvSide (the same group on a side stream, after the work
// queued so far; returns a ticket), ncclSideWait (the addon's stream waits for a ticket),
// ncclSideReadStart/ncclSideReadFinish (a small device -> host read started on a third stream once the
// side stream's work so far is done, so that what is queued on the side stream later — a payload — does
// not delay it; ncclSideReadFinish also finishes the reads a kernel writes itself into mapped pinned
// memory, nccl_device_read_start's); cudaLaunchOnSide, and the windows paths' timing marks
// (ncclTraceMark/ncclTraceRead).
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/entry_points.h"
#include "cuda/cuda_common.h"
#include "cuda/nccl_shared.h"

namespace hp {

namespace {

// ---- the NCCL ABI (nccl.h, 2.x)
typedef struct ncclComm* ncclComm_t;  // opaque
constexpr int NCCL_UNIQUE_ID_BYTES = 128;
struct ncclUniqueId {
  char internal[NCCL_UNIQUE_ID_BYTES];
};
typedef int ncclResult_t;  // 0 success, 1 CUDA error, 2 system, 3 internal, 4 bad argument, 5 bad usage, 6 remote, 7 in progress
constexpr ncclResult_t ncclSuccess = 0;
typedef int ncclDataType_t;
constexpr ncclDataType_t ncclUint8 = 1;

struct Nccl {
  bool tried = false;
  void* lib = nullptr;
  std::string path, error;
  int version = 0;
  ncclResult_t (*GetVersion)(int*) = nullptr;
  ncclResult_t (*GetUniqueId)(ncclUniqueId*) = nullptr;
  ncclResult_t (*CommInitRank)(ncclComm_t*, int, ncclUniqueId, int) = nullptr;
  ncclResult_t (*CommDestroy)(ncclComm_t) = nullptr;
  ncclResult_t (*Send)(const void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) = nullptr;
  ncclResult_t (*Recv)(void*, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t) = nullptr;
  ncclResult_t (*GroupStart)() = nullptr;
  ncclResult_t (*GroupEnd)() = nullptr;
  const char* (*GetErrorString)(ncclResult_t) = nullptr;
  const char* (*GetLastError)(ncclComm_t) = nullptr;  // NCCL ≥ 2.13; may be missing
};

struct Comm {
  ncclComm_t comm;
  int rank, size;
};

std::mutex g_nccl_mutex;
Nccl g_nccl;
std::vector<Comm> g_comms;  // handle h is g_comms[h - 1]; a destroyed one has comm == nullptr

const char* const HOW_TO_GET =
    "install NCCL 2.x (the system's libnccl2 package, or pip's nvidia-nccl-cu12/cu13 and set HOTPATHS_NCCL_LIB to its "
    "lib/libnccl.so.2), or use moe.localGroup() to run every rank in one process";

template <typename F>
bool sym(void* lib, const char* name, F* out) {
  *out = (F)dlsym(lib, name);
  return *out != nullptr;
}

// Opens libnccl once: HOTPATHS_NCCL_LIB if set, else libnccl.so.2, else libnccl.so.
Nccl& nccl() {
  std::lock_guard<std::mutex> lock(g_nccl_mutex);
  Nccl& n = g_nccl;
  if (n.tried) return n;
  n.tried = true;
  std::vector<std::string> names;
  const char* env = getenv("HOTPATHS_NCCL_LIB");
  if (env && *env) names.push_back(env);
  else names = {"libnccl.so.2", "libnccl.so"};
  std::string why;
  for (const std::string& name : names) {
    void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib) {
      n.lib = lib;
      n.path = name;
      break;
    }
    const char* e = dlerror();
    why += (why.empty() ? "" : "; ") + std::string(e ? e : name + ": not found");
  }
  if (!n.lib) {
    n.error = "libnccl could not be loaded (" + why + "): " + HOW_TO_GET;
    return n;
  }
  const bool ok = sym(n.lib, "ncclGetVersion", &n.GetVersion) && sym(n.lib, "ncclGetUniqueId", &n.GetUniqueId) &&
                  sym(n.lib, "ncclCommInitRank", &n.CommInitRank) && sym(n.lib, "ncclCommDestroy", &n.CommDestroy) &&
                  sym(n.lib, "ncclSend", &n.Send) && sym(n.lib, "ncclRecv", &n.Recv) && sym(n.lib, "ncclGroupStart", &n.GroupStart) &&
                  sym(n.lib, "ncclGroupEnd", &n.GroupEnd) && sym(n.lib, "ncclGetErrorString", &n.GetErrorString);
  sym(n.lib, "ncclGetLastError", &n.GetLastError);
  if (!ok) {
    n.error = n.path + " lacks ncclSend/ncclRecv or another function this needs (NCCL 2.7 or newer is required): " + HOW_TO_GET;
    dlclose(n.lib);
    n.lib = nullptr;
    return n;
  }
  if (n.GetVersion(&n.version) != ncclSuccess) n.version = 0;
  return n;
}

Nccl& nccl_or_throw(Napi::Env env, const char* fn) {
  Nccl& n = nccl();
  if (!n.lib) throw_error(env, "E_BACKEND", std::string(fn) + ": " + n.error);
  return n;
}

[[noreturn]] void nccl_fail(Napi::Env env, const char* fn, const char* what, ncclResult_t r, ncclComm_t comm) {
  Nccl& n = g_nccl;
  std::string msg = std::string(fn) + ": " + what + " failed: " + (n.GetErrorString ? n.GetErrorString(r) : "error") + " (ncclResult " +
                    std::to_string(r) + ")";
  if (n.GetLastError) {
    const char* last = n.GetLastError(comm);
    if (last && *last) msg += ": " + std::string(last);
  }
  msg += "; run with NCCL_DEBUG=WARN for NCCL's own account";
  throw_error(env, "E_NATIVE", msg);
}

Comm comm_arg(const Args& args, size_t i) {
  const uint64_t h = args.size(i, "comm");
  std::lock_guard<std::mutex> lock(g_nccl_mutex);
  if (h == 0 || h > g_comms.size() || g_comms[h - 1].comm == nullptr) args.fail("E_ARG", "comm " + std::to_string(h) + " is not a live NCCL communicator");
  return g_comms[h - 1];
}

}  // namespace

// ncclInfo(): { available, version (e.g. 22703), library, reason } without throwing.
Napi::Value NcclInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Nccl& n = nccl();
  Napi::Object out = Napi::Object::New(env);
  out.Set("available", Napi::Boolean::New(env, n.lib != nullptr));
  out.Set("version", Napi::Number::New(env, n.version));
  out.Set("library", Napi::String::New(env, n.path));
  out.Set("reason", Napi::String::New(env, n.lib ? "" : n.error));
  return out;
}

// ncclGetUniqueId(): Uint8Array(128), the id rank 0 hands to every rank (ncclCommInit).
Napi::Value NcclGetUniqueId(const Napi::CallbackInfo& info) {
  const char* fn = "ncclGetUniqueId";
  Napi::Env env = info.Env();
  Nccl& n = nccl_or_throw(env, fn);
  ncclUniqueId id;
  memset(&id, 0, sizeof(id));
  const ncclResult_t r = n.GetUniqueId(&id);
  if (r != ncclSuccess) nccl_fail(env, fn, "ncclGetUniqueId", r, nullptr);
  Napi::Uint8Array out = Napi::Uint8Array::New(env, NCCL_UNIQUE_ID_BYTES);
  memcpy(out.Data(), id.internal, NCCL_UNIQUE_ID_BYTES);
  return out;
}

// ncclCommInit(rank, size, id: Uint8Array(128)): number, a communicator handle on the addon's
// device. Blocks until all `size` ranks have joined (NCCL's rendezvous through the id).
Napi::Value NcclCommInit(const Napi::CallbackInfo& info) {
  const char* fn = "ncclCommInit";
  Napi::Env env = info.Env();
  Args args(info, fn, 3);
  const uint64_t rank = args.size(0, "rank"), size = args.size(1, "size");
  if (size == 0 || size > 65536) args.fail("E_ARG", "size must be in [1, 65536], got " + std::to_string(size));
  if (rank >= size) args.fail("E_ARG", "rank must be below size (" + std::to_string(size) + "), got " + std::to_string(rank));
  HostView id = args.typed_array(2, "id", napi_uint8_array, NCCL_UNIQUE_ID_BYTES);
  Nccl& n = nccl_or_throw(env, fn);
  cuda_stream(env, fn);  // picks and sets the device (HOTPATHS_LOCAL_RANK) before NCCL looks at it
  cuda_check(env, fn, "cudaSetDevice", cudaSetDevice(cuda_device()));
  ncclUniqueId uid;
  memcpy(uid.internal, id.data, NCCL_UNIQUE_ID_BYTES);
  ncclComm_t comm = nullptr;
  const ncclResult_t r = n.CommInitRank(&comm, (int)size, uid, (int)rank);
  if (r != ncclSuccess) nccl_fail(env, fn, "ncclCommInitRank", r, comm);
  std::lock_guard<std::mutex> lock(g_nccl_mutex);
  g_comms.push_back({comm, (int)rank, (int)size});
  return Napi::Number::New(env, (double)g_comms.size());
}

namespace {

// The side stream (created on first use, at the device's highest priority, so that a transfer's
// kernels are scheduled ahead of the addon's stream's when both wait for multiprocessors), and the
// events of its tickets (kept for reuse).
cudaStream_t g_side = nullptr;
std::vector<cudaEvent_t> g_free_events;
std::unordered_map<uint32_t, cudaEvent_t> g_tickets;
uint32_t g_next_ticket = 1;

// *s, created on first use at the device's highest priority.
cudaStream_t urgent_stream(Napi::Env env, const char* fn, cudaStream_t* s) {
  cuda_main_stream(env, fn);  // the device is set
  std::lock_guard<std::mutex> lock(g_nccl_mutex);
  if (*s == nullptr) {
    int least = 0, greatest = 0;
    cuda_check(env, fn, "cudaDeviceGetStreamPriorityRange", cudaDeviceGetStreamPriorityRange(&least, &greatest));
    cuda_check(env, fn, "cudaStreamCreateWithPriority", cudaStreamCreateWithPriority(s, cudaStreamNonBlocking, greatest));
  }
  return *s;
}

cudaStream_t side_stream(Napi::Env env, const char* fn) { return urgent_stream(env, fn, &g_side); }

cudaEvent_t take_event(Napi::Env env, const char* fn) {
  std::lock_guard<std::mutex> lock(g_nccl_mutex);
  if (!g_free_events.empty()) {
    cudaEvent_t e = g_free_events.back();
    g_free_events.pop_back();
    return e;
  }
  cudaEvent_t e = nullptr;
  cuda_check(env, fn, "cudaEventCreateWithFlags", cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  return e;
}

// An event may be recorded again once a wait on it has been queued (the wait keeps the state it saw).
void give_event(cudaEvent_t e) {
  std::lock_guard<std::mutex> lock(g_nccl_mutex);
  g_free_events.push_back(e);
}

// The barrier stream (native/cuda/nccl_lsa.cu's all-gathers and barriers, each after the stream whose
// work it lands, so that what the side stream queues next — the next piece — is not held up behind a
// barrier waiting for the other ranks). Highest priority, created on first use.
cudaStream_t g_bar = nullptr;

cudaStream_t bar_stream(Napi::Env env, const char* fn) { return urgent_stream(env, fn, &g_bar); }

// `waiter` waits for the work queued on `waited` so far.
void order_after(Napi::Env env, const char* fn, cudaStream_t waiter, cudaStream_t waited) {
  cudaEvent_t e = take_event(env, fn);
  cuda_check(env, fn, "cudaEventRecord", cudaEventRecord(e, waited));
  cuda_check(env, fn, "cudaStreamWaitEvent", cudaStreamWaitEvent(waiter, e, 0));
  give_event(e);
}

// A ticket for ncclSideWait standing for the work queued on `s` so far.
uint32_t ticket_of(Napi::Env env, const char* fn, cudaStream_t s) {
  cudaEvent_t done = take_event(env, fn);
  cuda_check(env, fn, "cudaEventRecord", cudaEventRecord(done, s));
  std::lock_guard<std::mutex> lock(g_nccl_mutex);
  const uint32_t ticket = g_next_ticket++;
  g_tickets[ticket] = done;
  return ticket;
}

// The arguments of ncclSendRecv and ncclSendRecvSide, as one NCCL group on `stream`.
void send_recv_group(const Args& args, Napi::Env env, const char* fn, cudaStream_t stream) {
  Nccl& n = nccl_or_throw(env, fn);
  const Comm c = comm_arg(args, 0);
  HostView peers = args.typed_array(1, "peers", napi_int32_array, 0);
  const size_t m = peers.length;
  HostView sp = args.typed_array(2, "sendPtrs", napi_biguint64_array, m);
  HostView sb = args.typed_array(3, "sendBytes", napi_float64_array, m);
  HostView rp = args.typed_array(4, "recvPtrs", napi_biguint64_array, m);
  HostView rb = args.typed_array(5, "recvBytes", napi_float64_array, m);
  std::vector<const void*> send(m);
  std::vector<void*> recv(m);
  std::vector<size_t> send_n(m), recv_n(m);
  for (size_t i = 0; i < m; i++) {
    const int peer = ((const int32_t*)peers.data)[i];
    if (peer < 0 || peer >= c.size) args.fail("E_ARG", "peers[" + std::to_string(i) + "] must be a rank in [0, " + std::to_string(c.size) + "), got " + std::to_string(peer));
    const double s = ((const double*)sb.data)[i], r = ((const double*)rb.data)[i];
    if (!(s >= 0) || !(r >= 0) || s > (double)MAX_SAFE_INTEGER || r > (double)MAX_SAFE_INTEGER || s != (double)(uint64_t)s || r != (double)(uint64_t)r) {
      args.fail("E_ARG", "sendBytes and recvBytes must hold non-negative integers (entry " + std::to_string(i) + ")");
    }
    send_n[i] = (size_t)s;
    recv_n[i] = (size_t)r;
    send[i] = send_n[i] ? cuda_device_ptr(args, "sendPtrs[i]", ((const uint64_t*)sp.data)[i], send_n[i]) : nullptr;
    recv[i] = recv_n[i] ? cuda_device_ptr(args, "recvPtrs[i]", ((const uint64_t*)rp.data)[i], recv_n[i]) : nullptr;
  }
  ncclResult_t r = n.GroupStart();
  if (r != ncclSuccess) nccl_fail(env, fn, "ncclGroupStart", r, c.comm);
  ncclResult_t first = ncclSuccess;
  const char* what = "";
  for (size_t i = 0; i < m && first == ncclSuccess; i++) {
    const int peer = ((const int32_t*)peers.data)[i];
    if (send_n[i] && (r = n.Send(send[i], send_n[i], ncclUint8, peer, c.comm, stream)) != ncclSuccess) first = r, what = "ncclSend";
    if (first == ncclSuccess && recv_n[i] && (r = n.Recv(recv[i], recv_n[i], ncclUint8, peer, c.comm, stream)) != ncclSuccess) first = r, what = "ncclRecv";
  }
  r = n.GroupEnd();  // always closes the group, also after a failed call inside it
  if (first != ncclSuccess) nccl_fail(env, fn, what, first, c.comm);
  if (r != ncclSuccess) nccl_fail(env, fn, "ncclGroupEnd", r, c.comm);
}

}  // namespace

// ncclSendRecv(comm, peers: Int32Array, sendPtrs: BigUint64Array, sendBytes: Float64Array,
//              recvPtrs: BigUint64Array, recvBytes: Float64Array)
// One NCCL group: for each i, ncclSend(sendPtrs[i], sendBytes[i]) to and ncclRecv(recvPtrs[i],
// recvBytes[i]) from peers[i] (0 bytes: skipped), on the addon's stream; returns at once. Every
// range is checked against the allocation table first. Entries may repeat a peer: NCCL pairs a
// peer's sends and receives in the order they are issued.
Napi::Value NcclSendRecv(const Napi::CallbackInfo& info) {
  const char* fn = "ncclSendRecv";
  Napi::Env env = info.Env();
  Args args(info, fn, 6);
  send_recv_group(args, env, fn, cuda_stream(env, fn));
  return env.Undefined();
}

// ncclSendRecvSide(comm, peers, sendPtrs, sendBytes, recvPtrs, recvBytes): number
// The same group on the side stream, which first waits for the work queued on the addon's stream so
// far; returns a ticket for ncclSideWait (each ticket is waited once).
Napi::Value NcclSendRecvSide(const Napi::CallbackInfo& info) {
  const char* fn = "ncclSendRecvSide";
  Napi::Env env = info.Env();
  Args args(info, fn, 6);
  cudaStream_t side = side_stream(env, fn);
  order_after(env, fn, side, cuda_main_stream(env, fn));
  send_recv_group(args, env, fn, side);
  return Napi::Number::New(env, ticket_of(env, fn, side));
}

// ncclSideWait(ticket): the addon's stream waits for the ticket's group (and what the side stream
// ran before it); returns at once.
Napi::Value NcclSideWait(const Napi::CallbackInfo& info) {
  const char* fn = "ncclSideWait";
  Args args(info, fn, 1);
  nccl_main_waits(args, args.size(0, "ticket"));
  return info.Env().Undefined();
}

// The addon's stream waits for ticket t's event, and the ticket is used up (its event back to the pool).
void nccl_main_waits(const Args& args, uint64_t ticket) {
  cudaEvent_t e = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_nccl_mutex);
    auto it = g_tickets.find((uint32_t)ticket);
    if (ticket > 0xFFFFFFFFull || it == g_tickets.end()) args.fail("E_ARG", "ticket " + std::to_string(ticket) + " is not pending (each ticket is waited once)");
    e = it->second;
    g_tickets.erase(it);
  }
  const cudaError_t err = cudaStreamWaitEvent(cuda_main_stream(args.env(), args.fn()), e, 0);
  give_event(e);
  cuda_check(args.env(), args.fn(), "cudaStreamWaitEvent", err);
}

// cudaLaunchOnSide(on: boolean): with true, the side stream first waits for the work queued on the
// addon's stream so far, and every kernel queued from then on goes on the side stream; with false,
// they go on the addon's stream again (which does not wait: ncclSideWait on a ticket orders it).
// The expert-parallel ops (src/ops/moe.ts) launch only kernels in between: no copy, read or allocation.
Napi::Value CudaLaunchOnSide(const Napi::CallbackInfo& info) {
  const char* fn = "cudaLaunchOnSide";
  Napi::Env env = info.Env();
  Args args(info, fn, 1);
  const bool on = args.boolean(0, "on");
  if (!on) {
    cuda_set_launch_stream(nullptr);
    return env.Undefined();
  }
  cudaStream_t main = cuda_main_stream(env, fn), side = side_stream(env, fn);
  order_after(env, fn, side, main);
  cuda_set_launch_stream(side);
  return env.Undefined();
}

namespace {
std::vector<cudaEvent_t> g_trace;       // nccl_trace_mark's events, in order
std::vector<cudaEvent_t> g_trace_free;  // the events of marks read, for the next marks: a mark should cost
                                        // the host as little as it can, since the timeline is the host's too
}

// ncclTraceMark(stream: 0 the addon's | 1 side | 2 barrier): number — records a timing event on that
// stream (HOTPATHS_EP_TRACE: src/ops/moe.ts's timeline of the windows paths); returns its index.
Napi::Value NcclTraceMark(const Napi::CallbackInfo& info) {
  const char* fn = "ncclTraceMark";
  Napi::Env env = info.Env();
  Args args(info, fn, 1);
  const uint64_t which = args.size(0, "stream");
  if (which > 2) args.fail("E_ARG", "stream must be 0, 1 or 2");
  return Napi::Number::New(env, nccl_trace_mark(env, fn, which == 0 ? cuda_main_stream(env, fn) : which == 1 ? side_stream(env, fn) : bar_stream(env, fn)));
}

int nccl_trace_mark(Napi::Env env, const char* fn, cudaStream_t s) {
  cudaEvent_t e = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_nccl_mutex);
    if (!g_trace_free.empty()) {
      e = g_trace_free.back();
      g_trace_free.pop_back();
    }
  }
  if (e == nullptr) cuda_check(env, fn, "cudaEventCreate", cudaEventCreate(&e));
  cuda_check(env, fn, "cudaEventRecord", cudaEventRecord(e, s));
  std::lock_guard<std::mutex> lock(g_nccl_mutex);
  g_trace.push_back(e);
  return (int)g_trace.size() - 1;
}

// ncclTraceRead(): Float64Array — waits for every mark, returns each one's time in ms after the first,
// and forgets them.
Napi::Value NcclTraceRead(const Napi::CallbackInfo& info) {
  const char* fn = "ncclTraceRead";
  Napi::Env env = info.Env();
  std::vector<cudaEvent_t> marks;
  {
    std::lock_guard<std::mutex> lock(g_nccl_mutex);
    marks.swap(g_trace);
  }
  Napi::Float64Array out = Napi::Float64Array::New(env, marks.size());
  cudaError_t err = cudaSuccess;
  for (size_t i = 0; i < marks.size(); i++) {
    float ms = 0;
    if (err == cudaSuccess) err = cudaEventSynchronize(marks[i]);
    if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, marks[0], marks[i]);
    out[i] = ms;
  }
  {
    std::lock_guard<std::mutex> lock(g_nccl_mutex);
    g_trace_free.insert(g_trace_free.end(), marks.begin(), marks.end());
  }
  cuda_check(env, fn, "cudaEventElapsedTime", err);
  return out;
}

namespace {

// Reads started by ncclSideReadStart: a stream of their own (waits for the side stream's events), and
// per ticket the pinned host staging buffer and the event of the copy; staging buffers are kept for reuse.
// A read a kernel writes itself (nccl_device_read_start) has no event: its flag word, which the kernel
// sets to seq after the bytes, and the stream whose errors end the host's wait.
struct PendingRead {
  cudaEvent_t done;
  void* host;
  size_t cap;
  size_t bytes;
  DeviceRead mapped;  // host != nullptr: written by a kernel queued on `stream`
  cudaStream_t stream = nullptr;
};
cudaStream_t g_read = nullptr;
std::vector<std::pair<void*, size_t>> g_free_pinned;
std::vector<DeviceRead> g_free_mapped;  // the device-written reads' staging (cap bytes, then the flag)
std::unordered_map<uint32_t, PendingRead> g_reads;

cudaStream_t read_stream(Napi::Env env, const char* fn) {
  side_stream(env, fn);
  std::lock_guard<std::mutex> lock(g_nccl_mutex);
  if (g_read == nullptr) cuda_check(env, fn, "cudaStreamCreateWithFlags", cudaStreamCreateWithFlags(&g_read, cudaStreamNonBlocking));
  return g_read;
}

}  // namespace

// ncclSideReadStart(ptr, bytes): number
// A device -> host read of `bytes` bytes at ptr, started once the work queued on the side stream so far
// is done (e.g. a gather), on a stream of its own, so that side-stream work queued after this call (a
// payload) runs meanwhile and does not delay it; into pinned memory. Returns a ticket for
// ncclSideReadFinish (each ticket once).
Napi::Value NcclSideReadStart(const Napi::CallbackInfo& info) {
  const char* fn = "ncclSideReadStart";
  Args args(info, fn, 2);
  const uint64_t bytes = args.size(1, "bytes");
  const void* p = bytes ? cuda_device_arg(args, 0, "ptr", bytes) : nullptr;
  Napi::Env env = info.Env();
  cudaStream_t rs = read_stream(env, fn);
  order_after(env, fn, rs, side_stream(env, fn));
  PendingRead r{nullptr, nullptr, 0, (size_t)bytes};
  {
    std::lock_guard<std::mutex> lock(g_nccl_mutex);
    for (size_t i = 0; i < g_free_pinned.size(); i++) {
      if (g_free_pinned[i].second >= bytes) {
        r.host = g_free_pinned[i].first;
        r.cap = g_free_pinned[i].second;
        g_free_pinned.erase(g_free_pinned.begin() + (long)i);
        break;
      }
    }
  }
  if (r.host == nullptr) {
    r.cap = bytes < 4096 ? 4096 : (size_t)bytes;
    cuda_check(env, fn, "cudaMallocHost", cudaMallocHost(&r.host, r.cap));
  }
  if (bytes) cuda_check(env, fn, "cudaMemcpyAsync", cudaMemcpyAsync(r.host, p, bytes, cudaMemcpyDeviceToHost, rs));
  r.done = take_event(env, fn);
  cuda_check(env, fn, "cudaEventRecord", cudaEventRecord(r.done, rs));
  std::lock_guard<std::mutex> lock(g_nccl_mutex);
  const uint32_t ticket = g_next_ticket++;
  g_reads[ticket] = r;
  return Napi::Number::New(env, ticket);
}

DeviceRead nccl_device_read_staging(Napi::Env env, const char* fn, uint64_t bytes) {
  DeviceRead d;
  {
    std::lock_guard<std::mutex> lock(g_nccl_mutex);
    for (size_t i = 0; i < g_free_mapped.size(); i++) {
      if (g_free_mapped[i].cap >= bytes) {
        d = g_free_mapped[i];
        g_free_mapped.erase(g_free_mapped.begin() + (long)i);
        break;
      }
    }
    d.seq = g_next_ticket++;
  }
  if (d.host == nullptr) {
    d.cap = bytes < 4096 ? 4096 : (size_t)(bytes + 63) / 64 * 64;
    void* p = nullptr;
    cuda_check(env, fn, "cudaHostAlloc", cudaHostAlloc(&p, d.cap + 64, cudaHostAllocMapped));
    void* dp = nullptr;
    const cudaError_t err = cudaHostGetDevicePointer(&dp, p, 0);
    if (err != cudaSuccess) cudaFreeHost(p);
    cuda_check(env, fn, "cudaHostGetDevicePointer", err);
    d.host = (uint8_t*)p;
    d.dst = (uint32_t*)dp;
    d.flag = (uint32_t*)((uint8_t*)dp + d.cap);
  }
  *(volatile uint32_t*)(d.host + d.cap) = 0;  // (no kernel holds a staging buffer in the free list)
  return d;
}

void nccl_device_read_give_back(const DeviceRead& d) {
  std::lock_guard<std::mutex> lock(g_nccl_mutex);
  g_free_mapped.push_back(d);
}

uint32_t nccl_device_read_start(const DeviceRead& d, uint64_t bytes, cudaStream_t s) {
  PendingRead r{nullptr, d.host, d.cap, (size_t)bytes};
  r.mapped = d;
  r.stream = s;
  std::lock_guard<std::mutex> lock(g_nccl_mutex);
  g_reads[d.seq] = r;
  return d.seq;
}

namespace {
// Spins until the kernel writing d (queued on stream s) has set its flag; the stream is asked every 1024
// turns for an error, and having finished without the flag is one too.
cudaError_t wait_device_read(const DeviceRead& d, cudaStream_t s) {
  const volatile uint32_t* flag = (const volatile uint32_t*)(d.host + d.cap);
  for (uint32_t turn = 1; *flag != d.seq; turn++) {
    if (turn % 1024 != 0) continue;
    const cudaError_t err = cudaStreamQuery(s);
    if (err == cudaErrorNotReady) {
      cudaGetLastError();  // (not an error: cleared, as it may be recorded)
      continue;
    }
    if (err != cudaSuccess) return err;
    if (*flag != d.seq) return cudaErrorLaunchFailure;  // the stream is done, the flag never came
  }
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  return cudaSuccess;
}
}  // namespace

// ncclSideReadFinish(ticket, dst: TypedArray): waits for the ticket's read (the host blocks; neither the
// addon's stream nor the side stream is waited for) and copies its bytes into dst (dst.byteLength must
// equal the read's bytes). A read written by a kernel (nccl_device_read_start) is waited for by spinning
// on its flag, the stream it was queued on asked every ~1000 turns for an error (or for having finished
// without the flag: an error too).
Napi::Value NcclSideReadFinish(const Napi::CallbackInfo& info) {
  const char* fn = "ncclSideReadFinish";
  Napi::Env env = info.Env();
  Args args(info, fn, 2);
  const uint64_t ticket = args.size(0, "ticket");
  HostView dst = args.typed_array(1, "dst");
  PendingRead r;
  {
    std::lock_guard<std::mutex> lock(g_nccl_mutex);
    auto it = g_reads.find((uint32_t)ticket);
    if (ticket > 0xFFFFFFFFull || it == g_reads.end()) args.fail("E_ARG", "read ticket " + std::to_string(ticket) + " is not pending (each ticket is finished once)");
    r = it->second;
    if (dst.bytes != r.bytes) args.fail("E_ARG", "dst holds " + std::to_string(dst.bytes) + " bytes, the read " + std::to_string(r.bytes));
    g_reads.erase(it);
  }
  const bool mapped = r.mapped.host != nullptr;
  const cudaError_t err = mapped ? wait_device_read(r.mapped, r.stream) : cudaEventSynchronize(r.done);
  if (err == cudaSuccess && r.bytes) memcpy(dst.data, r.host, r.bytes);
  if (!mapped) give_event(r.done);
  {
    std::lock_guard<std::mutex> lock(g_nccl_mutex);
    if (!mapped) g_free_pinned.push_back({r.host, r.cap});
    else if (err == cudaSuccess) g_free_mapped.push_back(r.mapped);  // (after an error a kernel may still write it: not reused)
  }
  cuda_check(env, fn, mapped ? "waiting for the device-written read" : "cudaEventSynchronize", err);
  return env.Undefined();
}

// ncclCommDestroy(comm): waits for the stream, then frees the communicator.
Napi::Value NcclCommDestroy(const Napi::CallbackInfo& info) {
  const char* fn = "ncclCommDestroy";
  Napi::Env env = info.Env();
  Args args(info, fn, 1);
  Nccl& n = nccl_or_throw(env, fn);
  const uint64_t h = args.size(0, "comm");
  Comm c = comm_arg(args, 0);
  cuda_check(env, fn, "cudaStreamSynchronize", cudaStreamSynchronize(cuda_main_stream(env, fn)));
  if (g_side != nullptr) cuda_check(env, fn, "cudaStreamSynchronize", cudaStreamSynchronize(g_side));
  if (g_bar != nullptr) cuda_check(env, fn, "cudaStreamSynchronize", cudaStreamSynchronize(g_bar));
  {
    std::lock_guard<std::mutex> lock(g_nccl_mutex);
    g_comms[h - 1].comm = nullptr;
  }
  const ncclResult_t r = n.CommDestroy(c.comm);
  if (r != ncclSuccess) nccl_fail(env, fn, "ncclCommDestroy", r, nullptr);
  return env.Undefined();
}

// ---------------------------------------------------------------- shared with nccl_lsa.cu

void* nccl_symbol(Napi::Env env, const char* fn, const char* name) {
  Nccl& n = nccl_or_throw(env, fn);
  return dlsym(n.lib, name);
}

int nccl_version() { return nccl().version; }

NcclCommRef nccl_comm_ref(const Args& args, size_t i) {
  const Comm c = comm_arg(args, i);
  return {(void*)c.comm, c.rank, c.size};
}

cudaStream_t nccl_side_stream(Napi::Env env, const char* fn) { return side_stream(env, fn); }

cudaStream_t nccl_side_after_main(Napi::Env env, const char* fn) {
  cudaStream_t side = side_stream(env, fn);
  order_after(env, fn, side, cuda_main_stream(env, fn));
  return side;
}

cudaStream_t nccl_barrier_stream_after(Napi::Env env, const char* fn, bool side) {
  cudaStream_t bar = bar_stream(env, fn);
  if (side) order_after(env, fn, bar, side_stream(env, fn));
  return bar;
}

uint32_t nccl_ticket(Napi::Env env, const char* fn, cudaStream_t s) { return ticket_of(env, fn, s); }

void nccl_throw(Napi::Env env, const char* fn, const char* what, int r, void* comm) { nccl_fail(env, fn, what, r, (ncclComm_t)comm); }

}  // namespace hp
