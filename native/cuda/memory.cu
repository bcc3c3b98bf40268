// CUDA runtime side of the addon: device discovery, the allocation table, the addon's stream, copies
// and timing events. All work goes on one non-blocking stream, so calls from JS are ordered the way
// they were made. The stream's device is 0, or HOTPATHS_CUDA_DEVICE, or else HOTPATHS_LOCAL_RANK
// (set by `hotpaths launch` for each rank: one GPU per process).
//
// The allocation table maps the base pointer of every cudaMalloc made through the addon to its
// size; kernels and copies accept only such base pointers, with sizes that cover every byte they
// touch, so that a bad call from JS fails with an error instead of corrupting memory.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "common/entry_points.h"
#include "common/promise_worker.h"
#include "cuda/cuda_common.h"

namespace hp {

static std::mutex g_mutex;                          // guards everything below
static std::map<uint64_t, uint64_t> g_allocations;  // device pointer -> bytes asked for
static std::set<uint64_t> g_foreign;                // entries of g_allocations that cudaFree must refuse
static cudaStream_t g_stream = nullptr;             // created on first use
static cudaStream_t g_launch = nullptr;             // while set (cuda_set_launch_stream), cuda_stream() returns it
static int g_sm_count = 0;
static int g_device = 0;                            // the stream's device, fixed at first use
static cudaEvent_t g_timer_start = nullptr;  // recorded by cudaTimerStart, taken by cudaTimerStop

static std::string hex(uint64_t p) {
  char text[32];
  snprintf(text, sizeof(text), "0x%llx", (unsigned long long)p);
  return text;
}

void cuda_check(Napi::Env env, const char* fn, const char* what, cudaError_t err) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so that the next call does not see it again
  throw_error(env, "E_NATIVE", std::string(fn) + ": " + what + " failed: " + cudaGetErrorString(err) + " (" +
                                   cudaGetErrorName(err) + ")");
}

cudaStream_t cuda_stream(Napi::Env env, const char* fn) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_stream != nullptr) return g_launch != nullptr ? g_launch : g_stream;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw_error(env, "E_BACKEND", std::string(fn) + ": no usable CUDA device: cudaGetDeviceCount failed with " +
                                      cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
                                      "); is an NVIDIA driver for CUDA " HOTPATHS_CUDA_VERSION " or newer installed?");
  }
  if (count == 0) throw_error(env, "E_BACKEND", std::string(fn) + ": no CUDA device found");
  // which device: HOTPATHS_CUDA_DEVICE, else HOTPATHS_LOCAL_RANK (one GPU per launched rank), else 0
  int device = 0;
  for (const char* name : {"HOTPATHS_CUDA_DEVICE", "HOTPATHS_LOCAL_RANK"}) {
    const char* v = getenv(name);
    if (v == nullptr || *v == 0) continue;
    char* end = nullptr;
    const long d = strtol(v, &end, 10);
    if (*end != 0 || d < 0) throw_error(env, "E_BACKEND", std::string(fn) + ": " + name + " must be a device index, got '" + v + "'");
    if (d >= count) {
      throw_error(env, "E_BACKEND", std::string(fn) + ": " + name + "=" + v + " names CUDA device " + v + ", but only " + std::to_string(count) +
                                        " device(s) are visible (launch at most that many ranks per machine)");
    }
    device = (int)d;
    break;
  }
  cuda_check(env, fn, "cudaSetDevice", cudaSetDevice(device));
  g_device = device;
  cuda_check(env, fn, "cudaDeviceGetAttribute", cudaDeviceGetAttribute(&g_sm_count, cudaDevAttrMultiProcessorCount, device));
  cudaStream_t stream = nullptr;
  cuda_check(env, fn, "cudaStreamCreateWithFlags", cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  g_stream = stream;
  return g_stream;
}

cudaStream_t cuda_main_stream(Napi::Env env, const char* fn) {
  cuda_stream(env, fn);
  std::lock_guard<std::mutex> lock(g_mutex);
  return g_stream;
}

void cuda_set_launch_stream(cudaStream_t s) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_launch = s;
}

void cuda_table_add(uint64_t p, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_allocations[p] = bytes;
  g_foreign.insert(p);
}

void cuda_table_remove(uint64_t p) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_allocations.erase(p);
  g_foreign.erase(p);
}

int cuda_sm_count() { return g_sm_count > 0 ? g_sm_count : 1; }

int cuda_device() { return g_device; }

void* cuda_device_arg(const Args& args, size_t i, const char* name, uint64_t need_bytes) {
  return cuda_device_ptr(args, name, args.bigint(i, name), need_bytes);
}

void* cuda_device_ptr(const Args& args, const char* name, uint64_t p, uint64_t need_bytes) {
  std::lock_guard<std::mutex> lock(g_mutex);
  // the allocation that starts at or below p (a tensor view may point inside an allocation)
  auto it = g_allocations.upper_bound(p);
  if (it == g_allocations.begin()) {
    args.fail("E_ARG", std::string(name) + " (" + hex(p) + ") is not inside a live allocation from cudaMalloc");
  }
  --it;
  const uint64_t offset = p - it->first;
  if (offset >= it->second && !(offset == 0 && it->second == 0)) {
    args.fail("E_ARG", std::string(name) + " (" + hex(p) + ") is not inside a live allocation from cudaMalloc");
  }
  if (it->second - offset < need_bytes) {
    args.fail("E_SHAPE", std::string(name) + " (" + hex(p) + ") has " + std::to_string(it->second - offset) +
                             " bytes left in its allocation, the call needs " + std::to_string(need_bytes));
  }
  return (void*)(uintptr_t)p;
}

// ---------------------------------------------------------------- device

// cudaDeviceCount(): number of devices; 0 when there is no driver, no device or any error.
Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();
    count = 0;
  }
  return Napi::Number::New(info.Env(), count);
}

// cudaDeviceInfo(): the stream's device's index, name, compute capability, sizes and clocks.
Napi::Value CudaDeviceInfo(const Napi::CallbackInfo& info) {
  const char* fn = "cudaDeviceInfo";
  Napi::Env env = info.Env();
  cuda_stream(env, fn);
  cudaDeviceProp prop;
  memset(&prop, 0, sizeof(prop));
  const int dev = g_device;
  cuda_check(env, fn, "cudaGetDeviceProperties", cudaGetDeviceProperties(&prop, dev));
  int clock_khz = 0, mem_clock_khz = 0, bus_width = 0, l2_bytes = 0, driver = 0, runtime = 0;
  cuda_check(env, fn, "cudaDeviceGetAttribute", cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev));
  cuda_check(env, fn, "cudaDeviceGetAttribute", cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, dev));
  cuda_check(env, fn, "cudaDeviceGetAttribute", cudaDeviceGetAttribute(&bus_width, cudaDevAttrGlobalMemoryBusWidth, dev));
  cuda_check(env, fn, "cudaDeviceGetAttribute", cudaDeviceGetAttribute(&l2_bytes, cudaDevAttrL2CacheSize, dev));
  cuda_check(env, fn, "cudaDriverGetVersion", cudaDriverGetVersion(&driver));
  cuda_check(env, fn, "cudaRuntimeGetVersion", cudaRuntimeGetVersion(&runtime));
  Napi::Object out = Napi::Object::New(env);
  out.Set("device", Napi::Number::New(env, dev));
  out.Set("name", Napi::String::New(env, prop.name));
  out.Set("major", Napi::Number::New(env, prop.major));
  out.Set("minor", Napi::Number::New(env, prop.minor));
  out.Set("smCount", Napi::Number::New(env, prop.multiProcessorCount));
  out.Set("totalMem", Napi::Number::New(env, (double)prop.totalGlobalMem));
  out.Set("l2Bytes", Napi::Number::New(env, l2_bytes));
  out.Set("driverVersion", Napi::Number::New(env, driver));
  out.Set("runtimeVersion", Napi::Number::New(env, runtime));
  out.Set("clockKHz", Napi::Number::New(env, clock_khz));
  out.Set("memClockKHz", Napi::Number::New(env, mem_clock_khz));
  out.Set("memBusWidth", Napi::Number::New(env, bus_width));
  return out;
}

// ---------------------------------------------------------------- memory

// cudaMalloc(bytes): bigint. A zero-byte request gets a real (1-byte) allocation recorded as 0 bytes,
// so that every tensor has its own pointer.
Napi::Value CudaMalloc(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMalloc";
  Args args(info, fn, 1);
  const uint64_t bytes = args.size(0, "bytes");
  cuda_stream(info.Env(), fn);
  void* p = nullptr;
  cuda_check(info.Env(), fn, ("cudaMalloc(" + std::to_string(bytes) + " bytes)").c_str(), cudaMalloc(&p, bytes > 0 ? bytes : 1));
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_allocations[(uint64_t)(uintptr_t)p] = bytes;
  }
  return Napi::BigInt::New(info.Env(), (uint64_t)(uintptr_t)p);
}

// cudaFree(ptr): waits for the stream (work queued on the allocation finishes first), then frees.
Napi::Value CudaFree(const Napi::CallbackInfo& info) {
  const char* fn = "cudaFree";
  Args args(info, fn, 1);
  cudaStream_t stream = cuda_stream(info.Env(), fn);
  void* p = cuda_device_arg(args, 0, "ptr", 0);
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_foreign.count((uint64_t)(uintptr_t)p) || g_allocations.count((uint64_t)(uintptr_t)p) == 0) {
      args.fail("E_ARG", "ptr is not the base of an allocation from cudaMalloc");
    }
  }
  cuda_check(info.Env(), fn, "cudaStreamSynchronize", cudaStreamSynchronize(stream));
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_allocations.erase((uint64_t)(uintptr_t)p);
  }
  cuda_check(info.Env(), fn, "cudaFree", cudaFree(p));
  return info.Env().Undefined();
}

// cudaMemset(ptr, byte, bytes): async on the stream.
Napi::Value CudaMemset(const Napi::CallbackInfo& info) {
  const char* fn = "cudaMemset";
  Args args(info, fn, 3);
  const uint64_t value = args.size(1, "byte");
  if (value > 255) args.fail("E_ARG", "byte must be 0..255, got " + std::to_string(value));
  const uint64_t bytes = args.size(2, "bytes");
  cudaStream_t stream = cuda_stream(info.Env(), fn);
  void* p = cuda_device_arg(args, 0, "ptr", bytes);
  if (bytes == 0) return info.Env().Undefined();
  cuda_check(info.Env(), fn, "cudaMemsetAsync", cudaMemsetAsync(p, (int)value, bytes, stream));
  return info.Env().Undefined();
}

// cudaUpload(ptr, src: TypedArray): host -> device of src.byteLength bytes; returns once the copy is
// done (stream-ordered: earlier work on the stream finishes first).
Napi::Value CudaUpload(const Napi::CallbackInfo& info) {
  const char* fn = "cudaUpload";
  Args args(info, fn, 2);
  HostView src = args.typed_array(1, "src");
  cudaStream_t stream = cuda_stream(info.Env(), fn);
  void* p = cuda_device_arg(args, 0, "ptr", src.bytes);
  if (src.bytes == 0) return info.Env().Undefined();
  cuda_check(info.Env(), fn, "cudaMemcpyAsync", cudaMemcpyAsync(p, src.data, src.bytes, cudaMemcpyHostToDevice, stream));
  cuda_check(info.Env(), fn, "cudaStreamSynchronize", cudaStreamSynchronize(stream));
  return info.Env().Undefined();
}

// Pinned staging buffers of downloads, kept for reuse: cudaMallocHost and cudaFreeHost cost far more
// than a small copy (cudaFreeHost also waits for the device), and the MoE ops read small tensors back
// several times a step. Power-of-two classes from 4 KB; buffers up to 64 MB are kept, 256 MB in all.
static std::mutex g_pin_mutex;
static std::multimap<size_t, void*> g_pinned;  // free buffers by capacity
static size_t g_pinned_bytes = 0;
static constexpr size_t PIN_KEEP_MAX = 64ull << 20, PIN_CACHE_MAX = 256ull << 20;

static size_t pinned_class(size_t bytes) {
  size_t c = 4096;
  while (c < bytes) c <<= 1;
  return c;
}

static cudaError_t pinned_take(size_t bytes, void** p, size_t* cap) {
  *cap = pinned_class(bytes);
  {
    std::lock_guard<std::mutex> lock(g_pin_mutex);
    auto it = g_pinned.find(*cap);
    if (it != g_pinned.end()) {
      *p = it->second;
      g_pinned.erase(it);
      g_pinned_bytes -= *cap;
      return cudaSuccess;
    }
  }
  return cudaMallocHost(p, *cap);
}

static void pinned_give(void* p, size_t cap) {
  {
    std::lock_guard<std::mutex> lock(g_pin_mutex);
    if (cap <= PIN_KEEP_MAX && g_pinned_bytes + cap <= PIN_CACHE_MAX) {
      g_pinned.emplace(cap, p);
      g_pinned_bytes += cap;
      return;
    }
  }
  cudaFreeHost(p);
}

// cudaDownload(ptr, dst: TypedArray): Promise<void>; device -> host of dst.byteLength bytes.
// The copy is queued now (into pinned staging memory, so it keeps its place in the stream's order);
// a worker waits for it and copies the staging memory into dst.
Napi::Value CudaDownload(const Napi::CallbackInfo& info) {
  const char* fn = "cudaDownload";
  Args args(info, fn, 2);
  Napi::Env env = info.Env();
  HostView dst = args.typed_array(1, "dst");
  cudaStream_t stream = cuda_stream(env, fn);
  void* p = cuda_device_arg(args, 0, "ptr", dst.bytes);
  const size_t bytes = dst.bytes;
  void* staging = nullptr;
  size_t cap = 0;
  cudaEvent_t done = nullptr;
  if (bytes > 0) {
    cuda_check(env, fn, "cudaMallocHost", pinned_take(bytes, &staging, &cap));
    cudaError_t err = cudaMemcpyAsync(staging, p, bytes, cudaMemcpyDeviceToHost, stream);
    if (err == cudaSuccess) err = cudaEventCreateWithFlags(&done, cudaEventDisableTiming);
    if (err == cudaSuccess) err = cudaEventRecord(done, stream);
    if (err != cudaSuccess) {
      if (done != nullptr) cudaEventDestroy(done);
      pinned_give(staging, cap);
      cuda_check(env, fn, "queueing the copy", err);
    }
  }
  void* host = dst.data;
  const int dev = g_device;
  auto* worker = new PromiseWorker(env, fn, {dst.value}, [=](double*) -> std::string {
    if (bytes == 0) return "";
    cudaSetDevice(dev);  // a worker thread: keep it off device 0's context when the stream is elsewhere
    const cudaError_t err = cudaEventSynchronize(done);
    if (err == cudaSuccess) memcpy(host, staging, bytes);
    cudaEventDestroy(done);
    pinned_give(staging, cap);
    if (err != cudaSuccess) return std::string("cudaDownload: the copy failed: ") + cudaGetErrorString(err);
    return "";
  });
  worker->Queue();
  return worker->promise();
}

// cudaCopy(dst, src, bytes): device -> device on the stream.
Napi::Value CudaCopy(const Napi::CallbackInfo& info) {
  const char* fn = "cudaCopy";
  Args args(info, fn, 3);
  const uint64_t bytes = args.size(2, "bytes");
  cudaStream_t stream = cuda_stream(info.Env(), fn);
  void* dst = cuda_device_arg(args, 0, "dst", bytes);
  void* src = cuda_device_arg(args, 1, "src", bytes);
  if (bytes == 0) return info.Env().Undefined();
  cuda_check(info.Env(), fn, "cudaMemcpyAsync", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
  return info.Env().Undefined();
}

// cudaSynchronize(): Promise<void>, resolved when everything queued so far has finished.
Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  const char* fn = "cudaSynchronize";
  cudaStream_t stream = cuda_stream(info.Env(), fn);
  // an idle stream settles at once, without the round trip through the worker pool (tens of µs); any
  // other answer (work pending, or an error) goes the worker's way, which reports the error
  const cudaError_t idle = cudaStreamQuery(stream);
  if (idle == cudaErrorNotReady) cudaGetLastError();  // (not an error: cleared, as it may be recorded)
  if (idle == cudaSuccess) {
    Napi::Promise::Deferred done = Napi::Promise::Deferred::New(info.Env());
    done.Resolve(info.Env().Undefined());
    return done.Promise();
  }
  const int dev = g_device;
  auto* worker = new PromiseWorker(info.Env(), fn, {}, [=](double*) -> std::string {
    cudaSetDevice(dev);
    const cudaError_t err = cudaStreamSynchronize(stream);
    if (err != cudaSuccess) return std::string("cudaSynchronize: ") + cudaGetErrorString(err);
    return "";
  });
  worker->Queue();
  return worker->promise();
}

// ---------------------------------------------------------------- timing

// cudaTimerStart(): records a start event on the stream (a second start restarts the timer).
Napi::Value CudaTimerStart(const Napi::CallbackInfo& info) {
  const char* fn = "cudaTimerStart";
  cudaStream_t stream = cuda_stream(info.Env(), fn);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_timer_start == nullptr) cuda_check(info.Env(), fn, "cudaEventCreate", cudaEventCreate(&g_timer_start));
  cuda_check(info.Env(), fn, "cudaEventRecord", cudaEventRecord(g_timer_start, stream));
  return info.Env().Undefined();
}

// cudaTimerStop(): Promise<number>, the milliseconds between the start event and a stop event
// recorded now. The pair of events belongs to this call, so a new start may follow at once.
Napi::Value CudaTimerStop(const Napi::CallbackInfo& info) {
  const char* fn = "cudaTimerStop";
  Napi::Env env = info.Env();
  cudaStream_t stream = cuda_stream(env, fn);
  cudaEvent_t start = nullptr;
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    start = g_timer_start;
    g_timer_start = nullptr;
  }
  if (start == nullptr) throw_error(env, "E_ARG", "cudaTimerStop: cudaTimerStart was not called");
  cudaEvent_t stop = nullptr;
  cudaError_t err = cudaEventCreate(&stop);
  if (err == cudaSuccess) err = cudaEventRecord(stop, stream);
  if (err != cudaSuccess) {
    cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
    cuda_check(env, fn, "recording the stop event", err);
  }
  const int dev = g_device;
  auto* worker = new PromiseWorker(
      env, fn, {},
      [=](double* result) -> std::string {
        cudaSetDevice(dev);
        float ms = 0;
        cudaError_t e = cudaEventSynchronize(stop);
        if (e == cudaSuccess) e = cudaEventElapsedTime(&ms, start, stop);
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
        if (e != cudaSuccess) return std::string("cudaTimerStop: ") + cudaGetErrorString(e);
        *result = ms;
        return "";
      },
      "E_NATIVE", /*resolve_number=*/true);
  worker->Queue();
  return worker->promise();
}

}  // namespace hp
