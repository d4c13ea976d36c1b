"""C code every generated kernel starts with: math, storage conversions, scratch memory, `dot`.

The transcendental functions are branch-free polynomial approximations (Cephes-style range
reduction) so that gcc and clang vectorize the loops that call them; they are within a few ulp of
libm. `oc_dot_f32_ld` is a packed, register-blocked matrix multiply: AVX-512 (12x32, 6x32 for a last
few rows), AVX2+FMA (6x16)
or portable (4x8) micro-kernels, chosen at run time from the CPU's flags.
"""

import os

PRELUDE = r"""
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <omp.h>

#define OC_MIN(a, b) ((a) < (b) ? (a) : (b))
#define OC_MAX(a, b) ((a) > (b) ? (a) : (b))
#define OC_CLAMP(x, lo, hi) OC_MIN(OC_MAX((x), (lo)), (hi))
/* floor(a / b) for b > 0, whatever a's sign (C's / truncates toward zero) */
#define OC_FLOORDIV(a, b) (((a) >= 0) ? (a) / (b) : -((-(a) + (b) - 1) / (b)))

/* max, min and select as functions: their arguments are always evaluated, so loads inside them
   are unconditional and the loops that use them vectorize (a ?: on loads would not) */
#define OC_DEF(T, S) \
  static inline T oc_max_##S(T a, T b) { return a > b ? a : b; } \
  static inline T oc_min_##S(T a, T b) { return a < b ? a : b; } \
  static inline T oc_sel_##S(_Bool c, T a, T b) { return c ? a : b; }
OC_DEF(float, f) OC_DEF(int32_t, i32) OC_DEF(int64_t, i64) OC_DEF(int8_t, i8) OC_DEF(uint8_t, u8)
OC_DEF(_Bool, b)
#undef OC_DEF

/* per-thread scratch memory for tiles, kept between launches */
static _Thread_local char *oc_tls_buf;
static _Thread_local size_t oc_tls_cap;
static char *oc_scratch(size_t n) {
  if (n > oc_tls_cap) {
    free(oc_tls_buf);
    size_t m = (n + 63) & ~(size_t)63;
    oc_tls_buf = (char *)aligned_alloc(64, m);
    oc_tls_cap = oc_tls_buf ? m : 0;
  }
  return oc_tls_buf;
}

static inline float oc_from_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t oc_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float oc_bf16_to_f32(uint16_t h) { return oc_from_bits((uint32_t)h << 16); }
static inline uint16_t oc_f32_to_bf16(float f) {
  uint32_t u = oc_to_bits(f);
  uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return (uint16_t)(((u & 0x7fffffffu) > 0x7f800000u) ? ((u >> 16) | 0x40u) : r);
}
static inline float oc_bf16_round(float f) { return oc_bf16_to_f32(oc_f32_to_bf16(f)); }

static inline float oc_exp(float x) {
  float xc = x < -87.5f ? -87.5f : (x > 88.72283f ? 88.72283f : x);
  float n = floorf(xc * 1.44269504088896341f + 0.5f);
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  /* 2^n as 2^(n-1) * 2 when n == 128, which has no float exponent of its own */
  int32_t ni = (int32_t)n, hi = ni > 127;
  float s = oc_from_bits((uint32_t)(ni - hi + 127) << 23);
  float res = p * s * (hi ? 2.0f : 1.0f);
  res = x < -87.33654f ? 0.0f : res;
  res = x > 88.72283f ? INFINITY : res;
  return res;
}

static inline float oc_log(float x) {
  int den = x < 1.17549435e-38f;
  float xs = den ? x * 8388608.0f : x;
  uint32_t u = oc_to_bits(xs);
  int32_t e = (int32_t)((u >> 23) & 0xffu) - 127 - (den ? 23 : 0);
  float m = oc_from_bits((u & 0x007fffffu) | 0x3f800000u);
  int big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1 : e;
  float f = m - 1.0f, z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  float fe = (float)e;
  y += -2.12194440e-4f * fe;
  y += -0.5f * z;
  float r = f + y + 0.693359375f * fe;
  r = x == 0.0f ? -INFINITY : r;
  r = x < 0.0f ? NAN : r;
  r = x == INFINITY ? INFINITY : r;
  return x != x ? x : r;
}

static inline float oc_tanh(float x) {
  float a = fabsf(x), z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  float big = 1.0f - 2.0f / (oc_exp(2.0f * a) + 1.0f);
  big = x < 0.0f ? -big : big;
  return a < 0.625f ? small : big;
}

static inline float oc_erf(float x) {
  float a = fabsf(x), z = x * x;
  float s = 1.20553e-4f;
  s = s * z - 8.5483270e-4f;
  s = s * z + 5.22397762e-3f;
  s = s * z - 2.686617064e-2f;
  s = s * z + 1.1283791671e-1f;
  s = s * z - 3.7612638903e-1f;
  s = (s * z + 1.1283791671f) * x;
  float t = 1.0f / (1.0f + 0.3275911f * a);
  float q = 1.061405429f;
  q = q * t - 1.453152027f;
  q = q * t + 1.421413741f;
  q = q * t - 0.284496736f;
  q = q * t + 0.254829592f;
  float y = 1.0f - q * t * oc_exp(-a * a);
  y = x < 0.0f ? -y : y;
  return a < 0.5f ? s : y;
}

static inline float oc_sigmoid(float x) { return 1.0f / (1.0f + oc_exp(-x)); }

"""

# only kernels that use `dot` include this part (it costs compile time)
DOT = r"""
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define OC_X86 1
#endif

/* ---- dot: C[M][N] += A[M][K] @ B[K][N] over row-major tile buffers ---- */

static int oc_isa_level(void) {
  static int level = -1;
  if (level < 0) {
    int l = 0;
#ifdef OC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) l = 1;
    if (l && __builtin_cpu_supports("avx512f")) l = 2;
#endif
    const char *env = getenv("OPENCANN_CPU_ISA");
    if (env && !strcmp(env, "avx2") && l > 1) l = 1;
    if (env && !strcmp(env, "generic")) l = 0;
    level = l;
  }
  return level;
}

/* B[K][N] (row stride ldb) into NR-wide panels, zero-padded past N. NR is a constant in each
   caller (oc_pack_b), so full rows copy as a few vector moves (a memcpy of a run-time size became
   a loop of 8-byte moves). */
static inline void oc_pack_b_nr(int K, int N, const float *B, int64_t ldb, float *Bp, const int NR) {
  for (int j0 = 0; j0 < N; j0 += NR) {
    int nr = OC_MIN(NR, N - j0);
    for (int k = 0; k < K; k++) {
      const float *src = B + (size_t)k * ldb + j0;
      if (nr == NR) {
        for (int j = 0; j < NR; j++) Bp[j] = src[j];
      } else {
        for (int j = 0; j < nr; j++) Bp[j] = src[j];
        for (int j = nr; j < NR; j++) Bp[j] = 0.0f;
      }
      Bp += NR;
    }
  }
}

static void oc_pack_b(int K, int N, const float *B, int64_t ldb, float *Bp, int NR) {
  if (NR == 32) oc_pack_b_nr(K, N, B, ldb, Bp, 32);
  else if (NR == 16) oc_pack_b_nr(K, N, B, ldb, Bp, 16);
  else oc_pack_b_nr(K, N, B, ldb, Bp, 8);
}

#ifdef OC_X86
/* dst[c][r] = src[r][c] for an 8 x 8 block (row strides ls, ld) */
__attribute__((target("avx2")))
static inline void oc_tr8x8(const float *src, int64_t ls, float *dst, int64_t ld) {
  __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ls);
  __m256 r2 = _mm256_loadu_ps(src + 2 * ls), r3 = _mm256_loadu_ps(src + 3 * ls);
  __m256 r4 = _mm256_loadu_ps(src + 4 * ls), r5 = _mm256_loadu_ps(src + 5 * ls);
  __m256 r6 = _mm256_loadu_ps(src + 6 * ls), r7 = _mm256_loadu_ps(src + 7 * ls);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(dst + ld, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(dst + 2 * ld, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(dst + 3 * ld, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(dst + 4 * ld, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(dst + 5 * ld, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(dst + 6 * ld, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(dst + 7 * ld, _mm256_permute2f128_ps(u3, u7, 0x31));
}
#endif

/* the same panels from B stored transposed, Bt[N][K] with row stride ldb (`dot(a, trans(b))`):
   whole panels by 8 x 8 register transposes where AVX2 is there (a gather down Bt's columns
   took a quarter of a training GEMM's time), the rest element by element */
static void oc_pack_bt(int K, int N, const float *Bt, int64_t ldb, float *Bp, int NR) {
  for (int j0 = 0; j0 < N; j0 += NR) {
    int nr = OC_MIN(NR, N - j0);
#ifdef OC_X86
    if (nr == NR && oc_isa_level() >= 1) {
      int k8 = K / 8 * 8;
      for (int j = 0; j < NR; j += 8)
        for (int k = 0; k < k8; k += 8)
          oc_tr8x8(Bt + (size_t)(j0 + j) * ldb + k, ldb, Bp + (size_t)k * NR + j, NR);
      for (int k = k8; k < K; k++)
        for (int j = 0; j < NR; j++) Bp[(size_t)k * NR + j] = Bt[(size_t)(j0 + j) * ldb + k];
      Bp += (size_t)NR * K;
      continue;
    }
#endif
    for (int k = 0; k < K; k++) {
      for (int j = 0; j < nr; j++) Bp[j] = Bt[(size_t)(j0 + j) * ldb + k];
      for (int j = nr; j < NR; j++) Bp[j] = 0.0f;
      Bp += NR;
    }
  }
}

/* C (mr x nr of it) += t, or = t when `ow` (overwrite: the first product into an unset C) */
static void oc_micro_add(const float *t, int tn, float *C, int ldc, int mr, int nr, int ow) {
  for (int r = 0; r < mr; r++)
    for (int j = 0; j < nr; j++) C[(size_t)r * ldc + j] = (ow ? 0.0f : C[(size_t)r * ldc + j]) + t[r * tn + j];
}

#ifdef OC_X86
__attribute__((target("avx2,fma")))
static void oc_micro_avx2(int K, const float *a, int lda, const float *b, float *C, int ldc, int mr, int nr, int ow) {
  /* rows past mr repeat the last valid row: computed, never stored */
  const float *a0 = a, *a1 = a + (size_t)OC_MIN(1, mr - 1) * lda, *a2 = a + (size_t)OC_MIN(2, mr - 1) * lda;
  const float *a3 = a + (size_t)OC_MIN(3, mr - 1) * lda, *a4 = a + (size_t)OC_MIN(4, mr - 1) * lda;
  const float *a5 = a + (size_t)OC_MIN(5, mr - 1) * lda;
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
  for (int k = 0; k < K; k++) {
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), x;
    x = _mm256_broadcast_ss(a0 + k); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
    x = _mm256_broadcast_ss(a1 + k); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
    x = _mm256_broadcast_ss(a2 + k); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
    x = _mm256_broadcast_ss(a3 + k); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
    x = _mm256_broadcast_ss(a4 + k); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
    x = _mm256_broadcast_ss(a5 + k); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
    b += 16;
  }
  if (mr == 6 && nr == 16) {
#define OC_UPD2(r, x0, x1) \
    _mm256_storeu_ps(C + (size_t)r * ldc, ow ? x0 : _mm256_add_ps(_mm256_loadu_ps(C + (size_t)r * ldc), x0)); \
    _mm256_storeu_ps(C + (size_t)r * ldc + 8, ow ? x1 : _mm256_add_ps(_mm256_loadu_ps(C + (size_t)r * ldc + 8), x1));
    OC_UPD2(0, c00, c01) OC_UPD2(1, c10, c11) OC_UPD2(2, c20, c21)
    OC_UPD2(3, c30, c31) OC_UPD2(4, c40, c41) OC_UPD2(5, c50, c51)
#undef OC_UPD2
  } else {
    float t[6 * 16];
    _mm256_storeu_ps(t + 0, c00); _mm256_storeu_ps(t + 8, c01);
    _mm256_storeu_ps(t + 16, c10); _mm256_storeu_ps(t + 24, c11);
    _mm256_storeu_ps(t + 32, c20); _mm256_storeu_ps(t + 40, c21);
    _mm256_storeu_ps(t + 48, c30); _mm256_storeu_ps(t + 56, c31);
    _mm256_storeu_ps(t + 64, c40); _mm256_storeu_ps(t + 72, c41);
    _mm256_storeu_ps(t + 80, c50); _mm256_storeu_ps(t + 88, c51);
    oc_micro_add(t, 16, C, ldc, mr, nr, ow);
  }
}

__attribute__((target("avx512f")))
static void oc_micro_avx512(int K, const float *a, int lda, const float *b, float *C, int ldc, int mr, int nr, int ow) {
  const float *a0 = a, *a1 = a + (size_t)OC_MIN(1, mr - 1) * lda, *a2 = a + (size_t)OC_MIN(2, mr - 1) * lda;
  const float *a3 = a + (size_t)OC_MIN(3, mr - 1) * lda, *a4 = a + (size_t)OC_MIN(4, mr - 1) * lda;
  const float *a5 = a + (size_t)OC_MIN(5, mr - 1) * lda;
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m512 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
  for (int k = 0; k < K; k++) {
    __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16), x;
    x = _mm512_set1_ps(a0[k]); c00 = _mm512_fmadd_ps(x, b0, c00); c01 = _mm512_fmadd_ps(x, b1, c01);
    x = _mm512_set1_ps(a1[k]); c10 = _mm512_fmadd_ps(x, b0, c10); c11 = _mm512_fmadd_ps(x, b1, c11);
    x = _mm512_set1_ps(a2[k]); c20 = _mm512_fmadd_ps(x, b0, c20); c21 = _mm512_fmadd_ps(x, b1, c21);
    x = _mm512_set1_ps(a3[k]); c30 = _mm512_fmadd_ps(x, b0, c30); c31 = _mm512_fmadd_ps(x, b1, c31);
    x = _mm512_set1_ps(a4[k]); c40 = _mm512_fmadd_ps(x, b0, c40); c41 = _mm512_fmadd_ps(x, b1, c41);
    x = _mm512_set1_ps(a5[k]); c50 = _mm512_fmadd_ps(x, b0, c50); c51 = _mm512_fmadd_ps(x, b1, c51);
    b += 32;
  }
  if (mr == 6 && nr == 32) {
#define OC_UPD2(r, x0, x1) \
    _mm512_storeu_ps(C + (size_t)r * ldc, ow ? x0 : _mm512_add_ps(_mm512_loadu_ps(C + (size_t)r * ldc), x0)); \
    _mm512_storeu_ps(C + (size_t)r * ldc + 16, ow ? x1 : _mm512_add_ps(_mm512_loadu_ps(C + (size_t)r * ldc + 16), x1));
    OC_UPD2(0, c00, c01) OC_UPD2(1, c10, c11) OC_UPD2(2, c20, c21)
    OC_UPD2(3, c30, c31) OC_UPD2(4, c40, c41) OC_UPD2(5, c50, c51)
#undef OC_UPD2
  } else {
    float t[6 * 32];
    _mm512_storeu_ps(t + 0, c00); _mm512_storeu_ps(t + 16, c01);
    _mm512_storeu_ps(t + 32, c10); _mm512_storeu_ps(t + 48, c11);
    _mm512_storeu_ps(t + 64, c20); _mm512_storeu_ps(t + 80, c21);
    _mm512_storeu_ps(t + 96, c30); _mm512_storeu_ps(t + 112, c31);
    _mm512_storeu_ps(t + 128, c40); _mm512_storeu_ps(t + 144, c41);
    _mm512_storeu_ps(t + 160, c50); _mm512_storeu_ps(t + 176, c51);
    oc_micro_add(t, 32, C, ldc, mr, nr, ow);
  }
}

/* C[12][nr] += the 12 x 32 accumulators c0 (columns 0-15) and c1 (16-31); with `ow`, C = them
   (plus `row`, nr floats added to every row, when given) */
__attribute__((target("avx512f")))
static inline void oc_add12x32(const __m512 *c0, const __m512 *c1, float *C, int ldc, int nr, int ow,
                               const float *row) {
  if (nr == 32 && ow && row) {
    const __m512 r0 = _mm512_loadu_ps(row), r1 = _mm512_loadu_ps(row + 16);
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++) {
      float *cr = C + (size_t)r * ldc;
      _mm512_storeu_ps(cr, _mm512_add_ps(c0[r], r0));
      _mm512_storeu_ps(cr + 16, _mm512_add_ps(c1[r], r1));
    }
  } else if (nr == 32 && ow) {
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++) {
      float *cr = C + (size_t)r * ldc;
      _mm512_storeu_ps(cr, c0[r]);
      _mm512_storeu_ps(cr + 16, c1[r]);
    }
  } else if (nr == 32) {
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++) {
      float *cr = C + (size_t)r * ldc;
      _mm512_storeu_ps(cr, _mm512_add_ps(_mm512_loadu_ps(cr), c0[r]));
      _mm512_storeu_ps(cr + 16, _mm512_add_ps(_mm512_loadu_ps(cr + 16), c1[r]));
    }
  } else {
    float t[12 * 32];
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++) { _mm512_storeu_ps(t + 32 * r, c0[r]); _mm512_storeu_ps(t + 32 * r + 16, c1[r]); }
    if (ow && row)
      for (int r = 0; r < 12; r++)
        for (int j = 0; j < nr; j++) t[32 * r + j] += row[j];
    oc_micro_add(t, 32, C, ldc, 12, nr, ow);
  }
}

/* 12 rows x 32 columns: 24 accumulators, so each B load and each broadcast of A feeds more FMAs
   than in the 6x32 kernel (measured on one Sapphire Rapids core, 132x192x128 from L2: 162
   against 138 GFLOP/s). All 12 rows are valid; the row pointers are plain multiples of lda, so
   they fit addressing modes instead of spilling. */
__attribute__((target("avx512f")))
static void oc_micro_avx512_12(int K, const float *a, int lda, const float *b, float *C, int ldc, int nr,
                               const float *pf, int pfs, int ow, const float *row) {
  /* four base pointers, three rows apart, and the row stride as an index: every broadcast is one
     (base + index * scale) address and nothing spills */
  const float *p0 = a, *p1 = a + (size_t)3 * lda, *p2 = a + (size_t)6 * lda, *p3 = a + (size_t)9 * lda;
  const size_t l1 = (size_t)lda, l2 = 2 * (size_t)lda;
  __m512 c0[12], c1[12];
#pragma GCC unroll 12
  for (int r = 0; r < 12; r++) { c0[r] = _mm512_setzero_ps(); c1[r] = c0[r]; }
#define OC_ROW(r, p, off) { __m512 x = _mm512_set1_ps(p[off]); \
    c0[r] = _mm512_fmadd_ps(x, b0, c0[r]); c1[r] = _mm512_fmadd_ps(x, b1, c1[r]); }
#define OC_STEP(o) { __m512 b0 = _mm512_loadu_ps(b + 32 * (o)), b1 = _mm512_loadu_ps(b + 32 * (o) + 16); \
    OC_ROW(0, p0, (o)) OC_ROW(1, p0, l1 + (o)) OC_ROW(2, p0, l2 + (o)) \
    OC_ROW(3, p1, (o)) OC_ROW(4, p1, l1 + (o)) OC_ROW(5, p1, l2 + (o)) \
    OC_ROW(6, p2, (o)) OC_ROW(7, p2, l1 + (o)) OC_ROW(8, p2, l2 + (o)) \
    OC_ROW(9, p3, (o)) OC_ROW(10, p3, l1 + (o)) OC_ROW(11, p3, l2 + (o)) \
    _mm_prefetch((const char *)(pf + pfs * (o)), _MM_HINT_T0); \
    _mm_prefetch((const char *)(pf + pfs * (o) + 16), _MM_HINT_T0); }
  /* two steps of k per pass, written out: gcc's own unrolling of this loop depended on the
     code around it (one kernel's copy ran 5% slower, not unrolled) */
  int k = 0;
  for (; k + 1 < K; k += 2) {
    OC_STEP(0) OC_STEP(1)
    p0 += 2; p1 += 2; p2 += 2; p3 += 2;
    b += 64;
    pf += 2 * pfs;
  }
  if (k < K) OC_STEP(0)
#undef OC_STEP
#undef OC_ROW
  oc_add12x32(c0, c1, C, ldc, nr, ow, row);
}

/* the 12x32 kernel for A stored transposed (K x M, row stride lda): the 12 rows of a block are
   12 adjacent floats of each A row (a training graph's X^T @ dY) */
__attribute__((target("avx512f")))
static void oc_micro_avx512_12t(int K, const float *a, int lda, const float *b, float *C, int ldc, int nr,
                                const float *pf, int pfs, int ow, const float *row) {
  __m512 c0[12], c1[12];
#pragma GCC unroll 12
  for (int r = 0; r < 12; r++) { c0[r] = _mm512_setzero_ps(); c1[r] = c0[r]; }
#define OC_STEP(o) { __m512 b0 = _mm512_loadu_ps(b + 32 * (o)), b1 = _mm512_loadu_ps(b + 32 * (o) + 16); \
    _Pragma("GCC unroll 12") for (int r = 0; r < 12; r++) { \
      __m512 x = _mm512_set1_ps(a[(size_t)(o) * lda + r]); \
      c0[r] = _mm512_fmadd_ps(x, b0, c0[r]); c1[r] = _mm512_fmadd_ps(x, b1, c1[r]); } \
    _mm_prefetch((const char *)(pf + pfs * (o)), _MM_HINT_T0); \
    _mm_prefetch((const char *)(pf + pfs * (o) + 16), _MM_HINT_T0); }
  int k = 0;
  for (; k + 1 < K; k += 2) {  /* two steps per pass, written out, as in oc_micro_avx512_12 */
    OC_STEP(0) OC_STEP(1)
    a += 2 * (size_t)lda;
    b += 64;
    pf += 2 * pfs;
  }
  if (k < K) OC_STEP(0)
#undef OC_STEP
  oc_add12x32(c0, c1, C, ldc, nr, ow, row);
}
#endif

#ifdef OC_X86
/* one block of mr (1-12) rows of A against one panel: from `p12`, a K x 12 copy of 12 rows, when
   given, else from the rows at `ap` (row stride ldr), 12 at a time or a last 1-11 as at most two
   6-row calls */
static inline void oc_block_avx512(int K, const float *p12, const float *ap, int64_t ldr,
                                   const float *bp, float *c, int64_t ldc, int mr, int nr,
                                   const float *pf, int pfs, int ow, const float *row) {
  if (p12) {
    oc_micro_avx512_12t(K, p12, 12, bp, c, (int)ldc, nr, pf, pfs, ow, row);
  } else if (mr == 12) {
    oc_micro_avx512_12(K, ap, (int)ldr, bp, c, (int)ldc, nr, pf, pfs, ow, row);
  } else {
    if (ow && row) {  /* the 6-row kernels: the rows set to `row` first, the products added */
      for (int r = 0; r < mr; r++) memcpy(c + (size_t)r * ldc, row, sizeof(float) * (size_t)nr);
      ow = 0;
    }
    oc_micro_avx512(K, ap, (int)ldr, bp, c, (int)ldc, OC_MIN(mr, 6), nr, ow);
    if (mr > 6) oc_micro_avx512(K, ap + (size_t)6 * ldr, (int)ldr, bp, c + (size_t)6 * ldc, (int)ldc, mr - 6, nr, ow);
  }
}
#endif

static void oc_micro_generic(int K, const float *a, int lda, const float *b, float *C, int ldc, int mr, int nr, int ow) {
  float t[4 * 8] = {0};
  for (int k = 0; k < K; k++) {
    for (int r = 0; r < mr; r++)
      for (int j = 0; j < 8; j++) t[r * 8 + j] += a[(size_t)r * lda + k] * b[j];
    b += 8;
  }
  oc_micro_add(t, 8, C, ldc, mr, nr, ow);
}

/* floats of scratch that oc_dot_f32_ld needs for its packed panels */
#define OC_DOT_SCRATCH(M, N, K) ((size_t)((M) + 8) * (K) + (size_t)((N) + 32) * (K) + 64)

/* C (row stride ldc) += A (M x K, row stride lda; or K x M when a_trans) @ B (K x N, row
   stride ldb; or N x K when b_trans). With `ow` (overwrite) C is unset and the block of C is
   Mt x Nt: C = A @ B on its first M rows and N columns, zeros on the rest; the products go
   straight to C, which is never read (a GEMM accumulating in its output writes each line of
   it as the first K slab finishes instead of in one burst at the end). With `ow` and `row`
   (Nt floats), the block starts from `row` in every row instead of zeros (a GEMM's bias): the
   AVX-512 kernels add it to the products as they store them (a last block of fewer than 12
   rows, and the other kernels, have their rows set to it first and the products added), so no
   pass over the whole block follows the product. */
static void oc_dot_f32_ld(int M, int N, int K, const float *A, int64_t lda, int a_trans,
                          const float *B, int64_t ldb, int b_trans, float *C, int64_t ldc,
                          float *pack, int ow, int Mt, int Nt, const float *row) {
  if (!ow) row = NULL;
  if (ow) {  /* what the product leaves unset: rows past M, columns past N, everything when K = 0 */
    int m0 = (M > 0 && N > 0 && K > 0) ? OC_MAX(M, 0) : 0, n0 = m0 ? OC_MAX(N, 0) : 0;
    for (int r = 0; r < Mt; r++) {
      int j0 = r < m0 ? n0 : 0;
      if (j0 >= Nt) continue;
      if (row) memcpy(C + (size_t)r * ldc + j0, row + j0, sizeof(float) * (size_t)(Nt - j0));
      else memset(C + (size_t)r * ldc + j0, 0, sizeof(float) * (size_t)(Nt - j0));
    }
  }
  if (M <= 0 || N <= 0 || K <= 0) return;
  int lvl = oc_isa_level();
  /* AVX-512 takes rows 12 at a time, and a last block of fewer with the 6-row kernel */
  int MR = lvl == 2 ? 12 : (lvl ? 6 : 4), NR = lvl == 2 ? 32 : (lvl == 1 ? 16 : 8);
  /* B is packed into NR-wide panels; A is read in place. A B of one panel's width whose rows
     are one panel apart is a panel already (weights packed ahead of time, see dot_panel_width):
     it is read where it is. */
  const float *Bp = pack;
  if (!b_trans && N == NR && ldb == NR)
    Bp = B;
  else if (b_trans)
    oc_pack_bt(K, N, B, ldb, pack, NR);
  else
    oc_pack_b(K, N, B, ldb, pack, NR);
#ifdef OC_X86
  /* AVX-512 with more than one panel of B: rows outer. Each 12-row block of A meets every panel
     in turn, so its 12 x K floats stay in L1 while the panels stream from L2, where B's packed
     K x N sits (K x N x 4 bytes: the GEMM's blocks keep it well under L2's size). With the
     panel outer, A's rows came from L2 for every panel instead (1024x1536x384 on 2 threads:
     +3-8%, hot or cold). A stored transposed is copied block by block into a K x 12 panel (12
     adjacent floats per k: the broadcasts read one sequential stream instead of a line of A
     per k) just before the block's sweep; a last block of fewer rows is copied row-major. */
  if (lvl == 2 && N > NR) {
    float *t = pack + (size_t)(N + 32) * K + 16;  /* 12 x K floats (the scratch has M + 8 rows) */
    for (int i0 = 0; i0 < M; i0 += 12) {
      int mr = OC_MIN(12, M - i0);
      const float *ap = A + (size_t)i0 * lda;
      int64_t ldr = lda;
      if (a_trans && mr == 12) {
        for (int k = 0; k < K; k++) memcpy(t + (size_t)k * 12, A + (size_t)k * lda + i0, 12 * sizeof(float));
      } else if (a_trans) {
        for (int r = 0; r < mr; r++)
          for (int k = 0; k < K; k++) t[(size_t)r * K + k] = A[(size_t)k * lda + i0 + r];
        ap = t;
        ldr = K;
      }
      /* A stored transposed: the first panel's pass brings the next block's 12 floats of each
         of A's K rows (one or two lines each, lda floats apart) toward L1, where the copy above
         will gather them; the hardware does not follow that stride from memory */
      int pf_next = a_trans && i0 + 24 <= M;
      for (int j0 = 0; j0 < N; j0 += NR) {
        const float *bp = Bp + (size_t)j0 * K;
        float *c = C + (size_t)i0 * ldc + j0;
        int nr = OC_MIN(NR, N - j0);
        int pf = pf_next && j0 == 0;
        oc_block_avx512(K, a_trans && mr == 12 ? t : NULL, ap, ldr, bp, c, ldc, mr, nr,
                        pf ? A + i0 + 12 : bp, pf ? (int)lda : 0, ow, row ? row + j0 : NULL);
      }
    }
    return;
  }
#endif
  /* Otherwise (one panel of B, or no AVX-512) the panel is outer: it stays in L1 while the rows
     pass. A stored transposed is copied first: AVX-512 copies its whole 12-row blocks into K x
     12 panels, one block after another, the other rows row-major after them (all after B's
     panels in the scratch); the other kernels read the row-major copy. */
  int full = 0;
  const float *Ar = A, *Ap = A;
  int64_t ldr = lda;
  if (a_trans) {
    full = lvl == 2 ? M / 12 * 12 : 0;
    float *t = pack + (size_t)(N + 32) * K + 16;
    for (int i0 = 0; i0 < full; i0 += 12) {
      float *dst = t + (size_t)i0 * K;
      for (int k = 0; k < K; k++) memcpy(dst + (size_t)k * 12, A + (size_t)k * lda + i0, 12 * sizeof(float));
    }
    for (int r = full; r < M; r++)
      for (int k = 0; k < K; k++) t[(size_t)r * K + k] = A[(size_t)k * lda + r];
    Ap = Ar = t;  /* block i0's panel and row r of the copy both at t + (i0 or r) * K */
    ldr = K;
  }
  /* The 12-row blocks bring the K x NR floats after this panel into L1 while they work: for B
     stored as panels, the panel's next K slab, which the next dot call reads (weights stream
     from memory). Each block takes its share (pfs floats per k), so the loads overlap the
     blocks that find this panel in L1 already. A prefetch never faults. Without AVX-512 the
     rows are set to `row` first and the products added. */
  if (row && lvl != 2) {
    for (int r = 0; r < M; r++) memcpy(C + (size_t)r * ldc, row, sizeof(float) * (size_t)N);
    ow = 0;
  }
  const size_t pf0 = (size_t)NR * K;
  const int pfs = OC_MAX(1, NR / OC_MAX(1, M / 12));
  for (int j0 = 0; j0 < N; j0 += NR) {
    const float *bp = Bp + (size_t)(j0 / NR) * NR * K;
    for (int i0 = 0; i0 < M; i0 += MR) {
      const float *ap = Ar + (size_t)i0 * ldr;
      float *c = C + (size_t)i0 * ldc + j0;
      int mr = OC_MIN(MR, M - i0), nr = OC_MIN(NR, N - j0);
#ifdef OC_X86
      if (lvl == 2) {
        const float *pf = bp + pf0 + (size_t)(i0 / 12) * pfs * K;
        oc_block_avx512(K, i0 < full ? Ap + (size_t)i0 * K : NULL, ap, ldr, bp, c, ldc, mr, nr, pf,
                        pfs, ow, ow && row ? row + j0 : NULL);
        continue;
      }
      if (lvl == 1) { oc_micro_avx2(K, ap, (int)ldr, bp, c, (int)ldc, mr, nr, ow); continue; }
#endif
      oc_micro_generic(K, ap, (int)ldr, bp, c, (int)ldc, mr, nr, ow);
    }
  }
}
"""


def dot_panel_width() -> int:
    """How many columns the cpu backend's `dot` packs B into per panel on this host (the NR of
    its micro-kernel: 32 with AVX-512, 16 with AVX2+FMA, else 8; OPENCANN_CPU_ISA narrows it as
    it narrows the C side). A (K, NR) right operand whose rows lie NR floats apart is a panel
    already, so `dot` reads it without packing: weights stored as panels once are never packed
    again. Any other width computes the same, only with packing."""
    from ..backends.cpu.compiler import simd_flags

    flags = simd_flags()
    level = 0
    if "avx2" in flags and "fma" in flags:
        level = 2 if "avx512f" in flags else 1
    isa = os.environ.get("OPENCANN_CPU_ISA")
    if isa == "avx2":
        level = min(level, 1)
    elif isa == "generic":
        level = 0
    return (8, 16, 32)[level]

