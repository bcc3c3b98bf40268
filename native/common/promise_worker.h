// Runs a piece of native work on a libuv worker thread and settles a Promise with its outcome, so
// the event loop stays free. The JS values handed in (typed arrays) are referenced until the
// Promise settles, so their memory stays alive while the worker reads or writes it.
//
//   auto* w = new PromiseWorker(env, "cpuFp8Encode", {x.value, out.value},
//                               [=](double* result) -> std::string { ...; return ""; });
//   w->Queue();
//   return w->promise();
//
// `work` runs off the main thread: it must not touch JS values. It returns "" on success (the
// Promise resolves with undefined, or with *result when `resolve_number` is set) or an error
// message (the Promise rejects with an Error whose code is `error_code`). `on_settle`, when given,
// runs on the main thread just before the Promise settles.
#pragma once

#include <napi.h>

#include <exception>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

namespace hp {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  using Work = std::function<std::string(double* result)>;

  PromiseWorker(Napi::Env env, const char* name, std::initializer_list<Napi::Object> keep_alive, Work work,
                const char* error_code = "E_NATIVE", bool resolve_number = false,
                std::function<void()> on_settle = nullptr)
      : Napi::AsyncWorker(env, name),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        error_code_(error_code),
        resolve_number_(resolve_number),
        on_settle_(std::move(on_settle)) {
    for (const Napi::Object& object : keep_alive) references_.push_back(Napi::Persistent(object));
  }

  Napi::Promise promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    std::string error;
    try {
      error = work_(&result_);
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown native error";
    }
    if (!error.empty()) SetError(error);
  }

  void OnOK() override {
    if (on_settle_) on_settle_();
    if (resolve_number_) {
      deferred_.Resolve(Napi::Number::New(Env(), result_));
    } else {
      deferred_.Resolve(Env().Undefined());
    }
  }

  void OnError(const Napi::Error& error) override {
    if (on_settle_) on_settle_();
    Napi::Object value = error.Value();
    value.Set("code", Napi::String::New(Env(), error_code_));
    deferred_.Reject(value);
  }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  const char* error_code_;
  bool resolve_number_;
  std::function<void()> on_settle_;
  std::vector<Napi::ObjectReference> references_;
  double result_ = 0;
};

}  // namespace hp
