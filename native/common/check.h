// Argument checks for the addon's entry points. Every failure throws a Napi::Error whose `code`
// property says what kind of mistake it was, and whose message names the function, the argument,
// what was expected and what was given:
//   E_ARG       wrong count or type of arguments, a bad enum value, an unknown device pointer
//   E_SHAPE     sizes that disagree (an array too short, rows * cols != x.length)
//   E_TOO_LARGE a size whose byte count overflows 64 bits or passes a kernel's limit
//   E_NATIVE    a CUDA (or other native) call failed
//   E_BACKEND   the backend is missing (built without CUDA, no device)
// A bad call from JS must never crash the process: these run before any memory is touched.
#pragma once

#include <napi.h>

#include <stdint.h>

#include <cmath>
#include <string>

namespace hp {

[[noreturn]] inline void throw_error(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Value().Set("code", Napi::String::New(env, code));
  throw error;
}

// Largest integer a JS number holds exactly (Number.MAX_SAFE_INTEGER).
static constexpr uint64_t MAX_SAFE_INTEGER = 9007199254740991ull;

inline const char* typed_array_name(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "TypedArray";
  }
}

inline size_t typed_array_element_size(napi_typedarray_type type) {
  switch (type) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array: return 1;
    case napi_int16_array:
    case napi_uint16_array: return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array: return 4;
    default: return 8;
  }
}

// A typed array's memory as seen from C++. `value` is the JS object (keep it referenced while the
// memory is in use on another thread).
struct HostView {
  Napi::Object value;
  napi_typedarray_type type;
  void* data;     // first element (already offset by byteOffset)
  size_t length;  // elements
  size_t bytes;   // byteLength
};

// a * b, or an E_TOO_LARGE error when it does not fit in 64 bits.
inline uint64_t checked_mul(Napi::Env env, const char* fn, uint64_t a, uint64_t b, const char* what) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) {
    throw_error(env, "E_TOO_LARGE", std::string(fn) + ": " + what + " overflows 64 bits (" + std::to_string(a) +
                                        " * " + std::to_string(b) + ")");
  }
  return r;
}

inline uint64_t ceil_div(uint64_t a, uint64_t b) { return a / b + (a % b != 0); }

// Reads and checks the arguments of one call: `Args args(info, "cpuFp8Encode", 3);`
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn, size_t count) : info_(info), fn_(fn) {
    if (info.Length() < count) {
      fail("E_ARG", "expected " + std::to_string(count) + " arguments, got " + std::to_string(info.Length()));
    }
  }

  Napi::Env env() const { return info_.Env(); }
  const char* fn() const { return fn_; }

  [[noreturn]] void fail(const char* code, const std::string& message) const {
    throw_error(info_.Env(), code, std::string(fn_) + ": " + message);
  }

  // A non-negative safe integer (a JS number).
  uint64_t size(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsNumber()) fail("E_ARG", std::string(name) + " must be a number, got " + type_of(v));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d > (double)MAX_SAFE_INTEGER || std::floor(d) != d) {
      fail("E_ARG", std::string(name) + " must be a non-negative safe integer, got " + number_text(d));
    }
    return (uint64_t)d;
  }

  // 0 = e4m3, 1 = e5m2.
  int format(size_t i) const {
    Napi::Value v = info_[i];
    if (!v.IsNumber()) fail("E_ARG", std::string("format must be 0 (e4m3) or 1 (e5m2), got ") + type_of(v));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d != 0 && d != 1) fail("E_ARG", "format must be 0 (e4m3) or 1 (e5m2), got " + number_text(d));
    return (int)d;
  }

  // The rows of one scaling block: 1 ([1, 128] groups) or 128 ([128, 128] blocks).
  int block_rows(size_t i) const {
    Napi::Value v = info_[i];
    if (!v.IsNumber()) fail("E_ARG", std::string("blockRows must be 1 or 128, got ") + type_of(v));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (d != 1 && d != 128) fail("E_ARG", "blockRows must be 1 or 128, got " + number_text(d));
    return (int)d;
  }

  // A finite number (a JS number that is not NaN or ±Infinity).
  double finite_number(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsNumber()) fail("E_ARG", std::string(name) + " must be a number, got " + type_of(v));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d)) fail("E_ARG", std::string(name) + " must be finite, got " + number_text(d));
    return d;
  }

  // A sampling temperature: finite and > 0 also once rounded to f32 (the kernels divide by it in f32).
  float temperature(size_t i) const {
    Napi::Value v = info_[i];
    if (!v.IsNumber()) fail("E_ARG", "temperature must be a number, got " + type_of(v));
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d > 0) || !std::isfinite(d) || !std::isfinite((float)d) || (float)d == 0) {
      fail("E_ARG", "temperature must be a finite number > 0 (as f32), got " + number_text(d));
    }
    return (float)d;
  }

  bool boolean(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsBoolean()) fail("E_ARG", std::string(name) + " must be a boolean, got " + type_of(v));
    return v.As<Napi::Boolean>().Value();
  }

  // Any typed array.
  HostView typed_array(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsTypedArray()) fail("E_ARG", std::string(name) + " must be a typed array, got " + type_of(v));
    HostView view;
    view.value = v.As<Napi::Object>();
    napi_value buffer;
    size_t offset;
    napi_status status = napi_get_typedarray_info(info_.Env(), v, &view.type, &view.length, &view.data, &buffer, &offset);
    if (status != napi_ok) fail("E_ARG", std::string(name) + ": cannot read the typed array");
    view.bytes = view.length * typed_array_element_size(view.type);
    if (view.length == 0) view.data = nullptr;  // detached or empty: never dereferenced
    return view;
  }

  // A typed array of either of two types (f32 or bf16 bits, f32 or u8) with at least `min_length`
  // elements; `note` follows the second type's name in the message (" (bf16 bits)").
  HostView typed_array_either(size_t i, const char* name, napi_typedarray_type a, napi_typedarray_type b, const char* note,
                              uint64_t min_length) const {
    HostView view = typed_array(i, name);
    if (view.type != a && view.type != b) {
      fail("E_ARG", std::string(name) + " must be a " + typed_array_name(a) + " or a " + typed_array_name(b) + note + ", got a " +
                        typed_array_name(view.type));
    }
    check_length(view, name, min_length);
    return view;
  }

  // A typed array of one given type with at least `min_length` elements.
  HostView typed_array(size_t i, const char* name, napi_typedarray_type type, uint64_t min_length) const {
    HostView view = typed_array(i, name);
    if (view.type != type) {
      fail("E_ARG", std::string(name) + " must be a " + typed_array_name(type) + ", got a " + typed_array_name(view.type));
    }
    check_length(view, name, min_length);
    return view;
  }

  void check_length(const HostView& view, const char* name, uint64_t min_length) const {
    if ((uint64_t)view.length < min_length) {
      fail("E_SHAPE", std::string(name) + " must hold at least " + std::to_string(min_length) + " elements, got " +
                          std::to_string(view.length));
    }
  }

  // A device pointer given as a BigInt (checked against the allocation table elsewhere).
  uint64_t bigint(size_t i, const char* name) const {
    Napi::Value v = info_[i];
    if (!v.IsBigInt()) fail("E_ARG", std::string(name) + " must be a BigInt device pointer, got " + type_of(v));
    bool lossless = false;
    const uint64_t p = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) fail("E_ARG", std::string(name) + " is not a valid device pointer (out of the 64-bit range)");
    return p;
  }

  static std::string type_of(const Napi::Value& v) {
    if (v.IsUndefined()) return "undefined";
    if (v.IsNull()) return "null";
    if (v.IsBoolean()) return "a boolean";
    if (v.IsNumber()) return "the number " + number_text(v.As<Napi::Number>().DoubleValue());
    if (v.IsBigInt()) return "a BigInt";
    if (v.IsString()) return "a string";
    if (v.IsTypedArray()) return std::string("a ") + typed_array_name(v.As<Napi::TypedArray>().TypedArrayType());
    if (v.IsArrayBuffer()) return "an ArrayBuffer";
    if (v.IsArray()) return "an Array";
    if (v.IsFunction()) return "a function";
    return "an object";
  }

  static std::string number_text(double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    if (std::floor(d) == d && std::fabs(d) < 1e18) return std::to_string((long long)d);
    return std::to_string(d);
  }

 private:
  const Napi::CallbackInfo& info_;
  const char* fn_;
};

}  // namespace hp
