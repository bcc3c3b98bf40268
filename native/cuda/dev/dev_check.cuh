// What the dev harnesses share: CK(call) prints the file, line, call and CUDA's error string and exits
// with 1 when the call does not return cudaSuccess; event_ms times one run of launches between two
// events; median_of takes the median of such times.
#pragma once
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

#include <algorithm>
#include <vector>

#define CK(x)                                                                               \
  do {                                                                                      \
    cudaError_t e_ = (x);                                                                   \
    if (e_ != cudaSuccess) {                                                                \
      fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); \
      exit(1);                                                                              \
    }                                                                                       \
  } while (0)

// Milliseconds between events e0 and e1 recorded on the default stream around launch().
template <class F>
float event_ms(cudaEvent_t e0, cudaEvent_t e1, F launch) {
  CK(cudaEventRecord(e0));
  launch();
  CK(cudaEventRecord(e1));
  CK(cudaEventSynchronize(e1));
  float ms;
  CK(cudaEventElapsedTime(&ms, e0, e1));
  return ms;
}

// The median (the upper one of an even count).
template <class T>
T median_of(std::vector<T> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
