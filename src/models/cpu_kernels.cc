// Float32 CPU kernels for MindSpore's Custom "aot" ops (src/models/cpu_kernels.py builds
// this file and says why). Each function reads params[inputs...] and writes
// params[outputs...]; shapes[i] has ndims[i] entries.
//
// Built with -ffast-math so gcc vectorises the erff/expf loops through glibc's libmvec;
// nothing here tests for NaN or infinity, and NaN inputs still give NaN outputs.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace {

constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;
constexpr float kSqrt2OverPi = 0.79788456080286536f;

int64_t numel(int nd, const int64_t* shape) {
  int64_t n = 1;
  for (int i = 0; i < nd; ++i) n *= shape[i];
  return n;
}

// Mean and 1 / sqrt(variance + eps) of one row (two passes, as the stock kernel does).
void row_stats(const float* x, int64_t n, float eps, float* mean, float* rstd) {
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += x[j];
  const float m = sum / n;
  float squares = 0.f;
#pragma omp simd reduction(+ : squares)
  for (int64_t j = 0; j < n; ++j) squares += (x[j] - m) * (x[j] - m);
  *mean = m;
  *rstd = 1.f / std::sqrt(squares / n + eps);
}

// out[i] = f(x[i]): inputs x; output out.
template <class F>
int map_one(void** params, int* ndims, int64_t** shapes, F f) {
  const float* x = static_cast<const float*>(params[0]);
  float* out = static_cast<float*>(params[1]);
  const int64_t n = numel(ndims[0], shapes[0]);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = f(x[i]);
  return 0;
}

// out[i] = f(x[i], y[i]): inputs x, y (same shape); output out.
template <class F>
int map_two(void** params, int* ndims, int64_t** shapes, F f) {
  const float* x = static_cast<const float*>(params[0]);
  const float* y = static_cast<const float*>(params[1]);
  float* out = static_cast<float*>(params[2]);
  const int64_t n = numel(ndims[0], shapes[0]);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = f(x[i], y[i]);
  return 0;
}

float phi_erf(float x) { return 0.5f * (1.f + erff(x * kSqrtHalf)); }

float tanh_inner(float x) { return tanhf(kSqrt2OverPi * (x + 0.044715f * x * x * x)); }

}  // namespace

// y = x * Phi(x), Phi through erf (BERT's exact gelu).
extern "C" int GeluErf(int, void** params, int* ndims, int64_t** shapes, const char**, void*,
                       void*) {
  return map_one(params, ndims, shapes, [](float x) { return x * phi_erf(x); });
}

// inputs x, dy; output dx = dy * (Phi(x) + x * phi(x)).
extern "C" int GeluErfGrad(int, void** params, int* ndims, int64_t** shapes, const char**,
                           void*, void*) {
  return map_two(params, ndims, shapes, [](float x, float dy) {
    return dy * (phi_erf(x) + x * kInvSqrt2Pi * expf(-0.5f * x * x));
  });
}

// Layer norm over the last axis. inputs x (..., n), gamma (n), beta (n), eps (1); output y.
extern "C" int LayerNorm(int, void** params, int* ndims, int64_t** shapes, const char**, void*,
                         void*) {
  const float* x = static_cast<const float*>(params[0]);
  const float* gamma = static_cast<const float*>(params[1]);
  const float* beta = static_cast<const float*>(params[2]);
  const float eps = *static_cast<const float*>(params[3]);
  float* y = static_cast<float*>(params[4]);
  const int64_t n = shapes[0][ndims[0] - 1];
  const int64_t rows = numel(ndims[0], shapes[0]) / n;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    float mean, rstd;
    row_stats(xr, n, eps, &mean, &rstd);
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) yr[j] = (xr[j] - mean) * rstd * gamma[j] + beta[j];
  }
  return 0;
}

// inputs x, gamma, dy, eps; outputs dx, dgamma, dbeta. The row statistics are recomputed
// from x (one row is in cache), so the forward keeps nothing but its input.
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.
extern "C" int LayerNormGrad(int, void** params, int* ndims, int64_t** shapes, const char**,
                             void*, void*) {
  const float* x = static_cast<const float*>(params[0]);
  const float* gamma = static_cast<const float*>(params[1]);
  const float* dy = static_cast<const float*>(params[2]);
  const float eps = *static_cast<const float*>(params[3]);
  float* dx = static_cast<float*>(params[4]);
  float* dgamma = static_cast<float*>(params[5]);
  float* dbeta = static_cast<float*>(params[6]);
  const int64_t n = shapes[0][ndims[0] - 1];
  const int64_t rows = numel(ndims[0], shapes[0]) / n;
  std::memset(dgamma, 0, n * sizeof(float));
  std::memset(dbeta, 0, n * sizeof(float));
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    const float* dyr = dy + r * n;
    float* dxr = dx + r * n;
    float mean, rstd;
    row_stats(xr, n, eps, &mean, &rstd);
    float sum_g = 0.f, sum_gx = 0.f;
#pragma omp simd reduction(+ : sum_g, sum_gx)
    for (int64_t j = 0; j < n; ++j) {
      const float xhat = (xr[j] - mean) * rstd;
      const float g = dyr[j] * gamma[j];
      sum_g += g;
      sum_gx += g * xhat;
      dgamma[j] += dyr[j] * xhat;
      dbeta[j] += dyr[j];
    }
    const float mean_g = sum_g / n, mean_gx = sum_gx / n;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) {
      const float xhat = (xr[j] - mean) * rstd;
      dxr[j] = rstd * (dyr[j] * gamma[j] - mean_g - xhat * mean_gx);
    }
  }
  return 0;
}

// Attention probabilities. inputs scores (..., n), mask (same shape, added), scale (1);
// output softmax(scores * scale + mask) over the last axis.
extern "C" int ScaledSoftmax(int, void** params, int* ndims, int64_t** shapes, const char**,
                             void*, void*) {
  const float* s = static_cast<const float*>(params[0]);
  const float* mask = static_cast<const float*>(params[1]);
  const float scale = *static_cast<const float*>(params[2]);
  float* p = static_cast<float*>(params[3]);
  const int64_t n = shapes[0][ndims[0] - 1];
  const int64_t rows = numel(ndims[0], shapes[0]) / n;
  for (int64_t r = 0; r < rows; ++r) {
    const float* sr = s + r * n;
    const float* mr = mask + r * n;
    float* pr = p + r * n;
    float top = std::numeric_limits<float>::lowest();
#pragma omp simd reduction(max : top)
    for (int64_t j = 0; j < n; ++j) {
      pr[j] = sr[j] * scale + mr[j];
      top = pr[j] > top ? pr[j] : top;
    }
    float total = 0.f;
#pragma omp simd reduction(+ : total)
    for (int64_t j = 0; j < n; ++j) {
      pr[j] = expf(pr[j] - top);
      total += pr[j];
    }
    const float inv = 1.f / total;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) pr[j] *= inv;
  }
  return 0;
}

// inputs p (the softmax output), dp, scale; output ds = scale * p * (dp - sum(dp * p)).
extern "C" int ScaledSoftmaxGrad(int, void** params, int* ndims, int64_t** shapes,
                                 const char**, void*, void*) {
  const float* p = static_cast<const float*>(params[0]);
  const float* dp = static_cast<const float*>(params[1]);
  const float scale = *static_cast<const float*>(params[2]);
  float* ds = static_cast<float*>(params[3]);
  const int64_t n = shapes[0][ndims[0] - 1];
  const int64_t rows = numel(ndims[0], shapes[0]) / n;
  for (int64_t r = 0; r < rows; ++r) {
    const float* pr = p + r * n;
    const float* dpr = dp + r * n;
    float* dsr = ds + r * n;
    float dot = 0.f;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < n; ++j) dot += dpr[j] * pr[j];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) dsr[j] = scale * pr[j] * (dpr[j] - dot);
  }
  return 0;
}

// gelu_new (ALBERT's): y = 0.5 * x * (1 + tanh(u)), u = sqrt(2/pi) * (x + 0.044715 x^3).
extern "C" int GeluTanh(int, void** params, int* ndims, int64_t** shapes, const char**, void*,
                        void*) {
  return map_one(params, ndims, shapes,
                 [](float x) { return 0.5f * x * (1.f + tanh_inner(x)); });
}

// inputs x, dy; output dx = dy * (0.5 (1 + t) + 0.5 x (1 - t^2) du/dx), t = tanh(u).
extern "C" int GeluTanhGrad(int, void** params, int* ndims, int64_t** shapes, const char**,
                            void*, void*) {
  return map_two(params, ndims, shapes, [](float x, float dy) {
    const float t = tanh_inner(x);
    const float slope = kSqrt2OverPi * (1.f + 3.f * 0.044715f * x * x);
    return dy * (0.5f * (1.f + t) + 0.5f * x * (1.f - t * t) * slope);
  });
}

// Counter-based dropout, bit for bit the mask of src/models/dropout.py's uniform_from_hash
// (int32 arithmetic there wraps exactly as uint32 arithmetic here). inputs x, key (int32
// scalar), site (int32, 1), p and 1 / (1 - p) (float32, 2); output x * keep / (1 - p).
// The gradient is the same function of the incoming gradient: no mask is kept.
extern "C" int HashDropout(int, void** params, int* ndims, int64_t** shapes, const char**,
                           void*, void*) {
  const float* x = static_cast<const float*>(params[0]);
  const uint32_t key = *static_cast<const uint32_t*>(params[1]);
  const uint32_t site = *static_cast<const uint32_t*>(params[2]);
  const float p = static_cast<const float*>(params[3])[0];
  const float scale = static_cast<const float*>(params[3])[1];
  float* y = static_cast<float*>(params[4]);
  const int64_t n = numel(ndims[0], shapes[0]);
  const uint32_t salt = key * 1000003u + site * 7919u;
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    uint32_t h = static_cast<uint32_t>(i) ^ salt;
    h = (h ^ (h >> 16)) * 73244475u;
    h = (h ^ (h >> 16)) * 73244475u;
    h ^= h >> 16;
    const float u = static_cast<float>(h & 0x7FFFFFu) * (1.f / 8388608.f);
    y[i] = x[i] * (u >= p ? scale : 0.f);
  }
  return 0;
}

// Sum of the squares of all elements (the global gradient norm, LAMB's trust ratio).
// input x; output out (1). float partial sums per block, the blocks added in double: on a
// 23M-element embedding gradient within 1.5e-9 of float64 (the row-wise plain ops 2.9e-6).
extern "C" int SumOfSquares(int, void** params, int* ndims, int64_t** shapes, const char**,
                            void*, void*) {
  constexpr int64_t kBlock = 4096;
  const float* x = static_cast<const float*>(params[0]);
  float* out = static_cast<float*>(params[1]);
  const int64_t n = numel(ndims[0], shapes[0]);
  double total = 0.0;
  for (int64_t start = 0; start < n; start += kBlock) {
    const int64_t end = std::min(n, start + kBlock);
    float part = 0.f;
#pragma omp simd reduction(+ : part)
    for (int64_t i = start; i < end; ++i) part += x[i] * x[i];
    total += part;
  }
  out[0] = static_cast<float>(total);
  return 0;
}

// AdamW on one tensor in one pass, in place: the decoupled decay, then Adam's update of the
// moments and the weight with the scaled gradient (the same steps, in the same order, as
// ApplyGradientDescent then the stock Adam kernel, which read and write every weight twice
// more). inputs w, m, v (all three written in place), g, k (float32, 5: gradient scale,
// lr * sqrt(c2) / c1, beta1, beta2, eps * sqrt(c2)), shrink (float32, 1: lr * decay);
// output done (1).
extern "C" int AdamWInPlace(int, void** params, int* ndims, int64_t** shapes, const char**,
                            void*, void*) {
  float* w = static_cast<float*>(params[0]);
  float* m = static_cast<float*>(params[1]);
  float* v = static_cast<float*>(params[2]);
  const float* g = static_cast<const float*>(params[3]);
  const float* k = static_cast<const float*>(params[4]);
  const float shrink = static_cast<const float*>(params[5])[0];
  const float scale = k[0], step = k[1], eps = k[4];
  const float rate1 = 1.f - k[2], rate2 = 1.f - k[3];
  const int64_t n = numel(ndims[0], shapes[0]);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * scale;
    const float mi = m[i] + (gi - m[i]) * rate1;
    const float vi = v[i] + (gi * gi - v[i]) * rate2;
    const float wi = w[i] - shrink * w[i];
    w[i] = wi - step * mi / (std::sqrt(vi) + eps);
    m[i] = mi;
    v[i] = vi;
  }
  static_cast<float*>(params[6])[0] = 1.f;
  return 0;
}
