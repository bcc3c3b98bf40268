// Standalone GPU harness for the cuda backend's log-prob and GRPO kernels (no Node): every kernel
// against an fp64 CPU reference on fresh random inputs (ragged V, V = 151,936, bf16 ±1e4 logits,
// NaN / −inf rows, out-of-range targets, in-place backward and fused, masked rows, outputs poisoned
// with 0xFF first), then timings (cudaEvent medians) with GB/s and the fraction of the device copy
// bandwidth measured in the same run. Writes a CSV for bench_logprob_torch.py.
// Build and run: native/cuda/dev/logprob_check.sh
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "cuda/grpo.cuh"
#include "cuda/logprob.cuh"
#include "dev_check.cuh"
#include "dev_hash.cuh"

using namespace hp;

static std::mt19937_64 rng(12345);
static int g_fail = 0;

static float bf16_to_f32(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1)) >> 16);
}

template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t n_) : n(n_) { CK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T))); }
  ~Dev() { cudaFree(p); }
  void up(const std::vector<T>& h) { CK(cudaMemcpy(p, h.data(), n * sizeof(T), cudaMemcpyHostToDevice)); }
  std::vector<T> down() const {
    std::vector<T> h(n);
    CK(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  void poison() { CK(cudaMemset(p, 0xFF, n * sizeof(T))); }
};

// ---------------------------------------------------------------- fp64 reference

struct RowRef {
  double lse, logp, ent;
};
// x = z / T of one row (z as stored: f32, or bf16 widened)
static RowRef ref_row(const std::vector<double>& x, int64_t y) {
  const double inf = INFINITY;
  double m = -inf;
  bool nan = false;
  for (double v : x) {
    if (std::isnan(v)) nan = true;
    else m = std::max(m, v);
  }
  const double xt = (y >= 0 && y < (int64_t)x.size()) ? x[y] : NAN;
  if (nan || m == inf) return {NAN, NAN, NAN};
  if (m == -inf) return {-inf, xt + inf, NAN};
  double s = 0, w = 0;
  for (double v : x) {
    const double e = std::exp(v - m);
    s += e;
    if (e != 0) w += e * (v - m);
  }
  const double lse = m + std::log(s);
  return {lse, xt - lse, std::log(s) - w / s};
}

static double ref_token(double logp, double old, bool has_ref, double ref, double A, double w, const lp::FusedParams& p, double st[4]) {
  const double lo = 1 - p.eps_low, hi = 1 + p.eps_high;
  double rho = std::exp(logp - old), d_rho = rho;
  if (p.delta > 0 && rho > p.delta) {
    rho = p.delta;
    d_rho = 0;
  }
  const bool clipped = (A > 0 && rho > hi) || (A < 0 && rho < lo);
  const double rc = std::min(std::max(rho, lo), hi);
  double l = -std::min(rho * A, rc * A);
  const double gp = clipped ? 0 : -A * d_rho;
  double gk = 0, k3 = 0;
  if (has_ref) {
    const double d = ref - logp;
    k3 = std::expm1(d) - d;
    if (p.beta != 0) {
      l += p.beta * k3;
      gk = -p.beta * std::expm1(d);
    }
  }
  st[0] = w * l;
  st[1] = clipped;
  st[2] = k3;
  st[3] = rho;
  return w * (gp + gk);
}

// ---------------------------------------------------------------- comparison

struct Err {
  double worst = 0;  // max |out − ref| / (abs_floor + |ref|) or scale-relative, see callers
  int64_t bad_nan = 0;
  void nan_check(double out, double ref) {
    if (std::isnan(out) != std::isnan(ref)) bad_nan++;
    if (!std::isnan(ref) && std::isinf(ref) && out != ref) bad_nan++;
  }
};
static void report(const char* what, const Err& e, double tol) {
  const bool ok = e.bad_nan == 0 && e.worst <= tol;
  if (!ok) g_fail++;
  printf("  %-58s err %.3e (tol %.0e) nan-mismatch %lld  %s\n", what, e.worst, tol, (long long)e.bad_nan, ok ? "ok" : "FAIL");
}

// ---------------------------------------------------------------- input generation

// logits [N, V] as f32 values; special rows: 1 has a NaN, 2 all −inf, 3 some −inf; targets in range except row 4
struct Case {
  int64_t N, V;
  bool bf16;
  double mag;  // uniform(−mag, mag) (bf16: then rounded)
  float T;
};
static void make_logits(const Case& c, std::vector<float>& zf, std::vector<uint16_t>& zb, std::vector<int32_t>& y, bool specials) {
  std::uniform_real_distribution<double> u(-c.mag, c.mag);
  zf.assign(c.N * c.V, 0);
  zb.assign(c.N * c.V, 0);
  for (int64_t i = 0; i < c.N * c.V; i++) {
    float v = (float)u(rng);
    if (c.bf16) {
      zb[i] = f32_to_bf16(v);
      v = bf16_to_f32(zb[i]);
    }
    zf[i] = v;
  }
  auto set = [&](int64_t t, int64_t v, float val) {
    zf[t * c.V + v] = val;
    zb[t * c.V + v] = f32_to_bf16(val);
  };
  y.assign(c.N, 0);
  for (int64_t t = 0; t < c.N; t++) y[t] = (int32_t)(rng() % c.V);
  if (specials && c.N >= 5) {
    set(1, c.V / 2, NAN);
    for (int64_t v = 0; v < c.V; v++) set(2, v, -INFINITY);
    for (int64_t v = 0; v < c.V; v += 3) set(3, v, -INFINITY);
    y[3] = 1;  // a finite logit (v = 1 is not a multiple of 3) when V > 1
    y[4] = (int32_t)c.V;  // out of range: logp NaN
  }
}
static std::vector<double> row_x(const Case& c, const std::vector<float>& zf, int64_t t) {
  std::vector<double> x(c.V);
  for (int64_t v = 0; v < c.V; v++) x[v] = (double)zf[t * c.V + v] / c.T;
  return x;
}

// ---------------------------------------------------------------- checks

static void check_forward_backward(const Case& c, bool in_place) {
  std::vector<float> zf;
  std::vector<uint16_t> zb;
  std::vector<int32_t> y;
  make_logits(c, zf, zb, y, true);
  Dev<float> dzf(c.bf16 ? 0 : c.N * c.V);
  Dev<uint16_t> dzb(c.bf16 ? c.N * c.V : 0);
  if (c.bf16) dzb.up(zb);
  else dzf.up(zf);
  Dev<int32_t> dy(c.N);
  dy.up(y);
  Dev<float> logp(c.N), lse(c.N), ent(c.N), g(c.N);
  logp.poison();
  lse.poison();
  ent.poison();
  if (c.bf16) CK(logprob_forward_launch(dzb.p, dy.p, c.N, c.V, c.T, logp.p, lse.p, ent.p, 0));
  else CK(logprob_forward_launch(dzf.p, dy.p, c.N, c.V, c.T, logp.p, lse.p, ent.p, 0));
  CK(cudaDeviceSynchronize());
  auto hl = logp.down(), hs = lse.down(), he = ent.down();
  Err el, es, ee;
  std::vector<RowRef> refs(c.N);
  for (int64_t t = 0; t < c.N; t++) {
    refs[t] = ref_row(row_x(c, zf, t), y[t]);
    const RowRef& r = refs[t];
    el.nan_check(hl[t], r.logp);
    es.nan_check(hs[t], r.lse);
    ee.nan_check(he[t], r.ent);
    if (std::isfinite(r.logp)) el.worst = std::max(el.worst, std::fabs(hl[t] - r.logp) / (1 + std::fabs(r.logp)));
    if (std::isfinite(r.lse)) es.worst = std::max(es.worst, std::fabs(hs[t] - r.lse) / (1 + std::fabs(r.lse)));
    if (std::isfinite(r.ent)) ee.worst = std::max(ee.worst, std::fabs(he[t] - r.ent) / (1 + std::fabs(r.ent)));
  }
  char name[160];
  snprintf(name, sizeof name, "forward %s N=%lld V=%lld mag=%g T=%g: logp", c.bf16 ? "bf16" : "f32", (long long)c.N, (long long)c.V, c.mag, c.T);
  report(name, el, 2e-6);
  report("  lse", es, 2e-6);
  report("  entropy", ee, 2e-5);

  // backward from the kernel's own lse, g random
  std::vector<float> hg(c.N);
  std::normal_distribution<double> nd(0, 1);
  for (auto& v : hg) v = (float)nd(rng);
  g.up(hg);
  Dev<float> d(in_place ? 0 : c.N * c.V);
  float* dp = in_place ? dzf.p : d.p;
  if (!in_place) d.poison();
  if (c.bf16) CK(logprob_backward_launch(dzb.p, dy.p, lse.p, g.p, c.N, c.V, c.T, dp, 0));
  else CK(logprob_backward_launch(dzf.p, dy.p, lse.p, g.p, c.N, c.V, c.T, dp, 0));
  CK(cudaDeviceSynchronize());
  std::vector<float> hd(c.N * c.V);
  CK(cudaMemcpy(hd.data(), dp, hd.size() * 4, cudaMemcpyDeviceToHost));
  Err ed;
  double num = 0, den = 0;
  for (int64_t t = 0; t < c.N; t++) {
    const double l = hs[t], scale = (double)hg[t] / c.T;
    std::vector<double> ref(c.V);
    double rmax = 0;
    for (int64_t v = 0; v < c.V; v++) {
      const double x = (double)zf[t * c.V + v] / c.T;
      ref[v] = ((v == y[t] ? 1.0 : 0.0) - std::exp(x - l)) * scale;
      if (std::isfinite(ref[v])) rmax = std::max(rmax, std::fabs(ref[v]));
    }
    for (int64_t v = 0; v < c.V; v++) {
      const double o = hd[t * c.V + v];
      ed.nan_check(o, ref[v]);
      if (std::isfinite(ref[v]) && rmax > 0) {
        ed.worst = std::max(ed.worst, std::fabs(o - ref[v]) / rmax);
        num += (o - ref[v]) * (o - ref[v]);
        den += ref[v] * ref[v];
      }
    }
  }
  snprintf(name, sizeof name, "  backward%s (max|d−ref|/rowmax; rel-l2 %.1e)", in_place ? " in place" : "", std::sqrt(num / std::max(den, 1e-300)));
  report(name, ed, 1e-5);
}

static void check_fused(const Case& c, bool out_bf16, bool in_place, bool u8_mask, bool with_ref, double delta, int cluster, double stats_tol) {
  std::vector<float> zf;
  std::vector<uint16_t> zb;
  std::vector<int32_t> y;
  make_logits(c, zf, zb, y, true);
  const int64_t T = c.N % 4 == 0 ? 4 : 1, B = c.N / T;
  std::vector<RowRef> refs(c.N);
  for (int64_t t = 0; t < c.N; t++) refs[t] = ref_row(row_x(c, zf, t), y[t]);
  std::normal_distribution<double> nd(0, 1);
  std::vector<float> old(c.N), refp(c.N), adv(B), w(B), maskf(c.N);
  std::vector<uint8_t> masku(c.N);
  for (int64_t t = 0; t < c.N; t++) {
    const double base = std::isfinite(refs[t].logp) ? refs[t].logp : 0;
    old[t] = (float)(base + 0.3 * nd(rng));
    refp[t] = (float)(base + 0.3 * nd(rng));
    const bool on = (t % 7) != 5;  // every 7th row (from 5) masked out
    maskf[t] = on ? 1.0f : 0.0f;
    masku[t] = on;
  }
  for (int64_t b = 0; b < B; b++) {
    adv[b] = (float)nd(rng);
    w[b] = (float)(0.5 + (rng() % 100) / 100.0);
  }
  lp::FusedParams p;
  p.N = c.N;
  p.V = c.V;
  p.T = T;
  p.inv_t = 1.0f / c.T;
  p.eps_low = 0.2;
  p.eps_high = 0.28;
  p.delta = delta;
  p.beta = with_ref ? 0.04 : 0;
  Dev<float> dzf(c.bf16 ? 0 : c.N * c.V);
  Dev<uint16_t> dzb(c.bf16 ? c.N * c.V : 0);
  if (c.bf16) dzb.up(zb);
  else dzf.up(zf);
  Dev<int32_t> dy(c.N);
  dy.up(y);
  Dev<float> dold(c.N), dref(c.N), dadv(B), dw(B), dmf(c.N), logp(c.N), stats(c.N * 4);
  Dev<uint8_t> dmu(c.N);
  dold.up(old);
  dref.up(refp);
  dadv.up(adv);
  dw.up(w);
  dmf.up(maskf);
  dmu.up(masku);
  logp.poison();
  stats.poison();
  Dev<float> of(!in_place && !out_bf16 ? c.N * c.V : 0);
  Dev<uint16_t> ob(!in_place && out_bf16 ? c.N * c.V : 0);
  if (!in_place) {
    of.poison();
    ob.poison();
  }
  const float* rp = with_ref ? dref.p : nullptr;
  cudaError_t err;
#define FUSED(ZP, OP, MP) grpo_fused_launch(ZP, dy.p, dold.p, rp, dadv.p, MP, dw.p, p, logp.p, OP, stats.p, 0, cluster)
  if (c.bf16 && out_bf16) {
    uint16_t* o = in_place ? dzb.p : ob.p;
    err = u8_mask ? FUSED(dzb.p, o, dmu.p) : FUSED(dzb.p, o, dmf.p);
  } else if (c.bf16) {
    err = u8_mask ? FUSED(dzb.p, of.p, dmu.p) : FUSED(dzb.p, of.p, dmf.p);
  } else if (out_bf16) {
    err = u8_mask ? FUSED(dzf.p, ob.p, dmu.p) : FUSED(dzf.p, ob.p, dmf.p);
  } else {
    float* o = in_place ? dzf.p : of.p;
    err = u8_mask ? FUSED(dzf.p, o, dmu.p) : FUSED(dzf.p, o, dmf.p);
  }
#undef FUSED
  CK(err);
  CK(cudaDeviceSynchronize());
  std::vector<float> hd(c.N * c.V);
  if (out_bf16) {
    std::vector<uint16_t> hb(c.N * c.V);
    CK(cudaMemcpy(hb.data(), in_place ? dzb.p : ob.p, hb.size() * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < hb.size(); i++) hd[i] = bf16_to_f32(hb[i]);
  } else {
    CK(cudaMemcpy(hd.data(), in_place ? dzf.p : of.p, hd.size() * 4, cudaMemcpyDeviceToHost));
  }
  auto hl = logp.down(), hs = stats.down();
  Err el, est, ed;
  double num = 0, den = 0, g_shift = 0;
  for (int64_t t = 0; t < c.N; t++) {
    const int64_t b = t / T;
    double st[4] = {0, 0, 0, 0}, g = 0, lpv = 0, slack = 0;
    if (maskf[t] != 0) {
      lpv = refs[t].logp;
      g = ref_token(lpv, old[t], with_ref, refp[t], adv[b], w[b], p, st);
      // the loss's gradient can cancel (−A·ρ against −β·expm1(d)): its sensitivity to an f32 ulp of
      // logp is the loss's, not the kernel's. The gradient check allows, per row, the relative change
      // of g between the f64 logp and the kernel's f32 logp (checked above) on top of the tolerance.
      if (std::isfinite(hl[t])) {
        double st2[4];
        const double g2 = ref_token(hl[t], old[t], with_ref, refp[t], adv[b], w[b], p, st2);
        slack = std::fabs(g2 - g) / (1e-300 + std::fabs(g));
        g_shift = std::max(g_shift, slack);
      }
    }
    el.nan_check(hl[t], lpv);
    if (std::isfinite(lpv)) el.worst = std::max(el.worst, std::fabs(hl[t] - lpv) / (1 + std::fabs(lpv)));
    for (int j = 0; j < 4; j++) {
      est.nan_check(hs[t * 4 + j], st[j]);
      if (std::isfinite(st[j])) est.worst = std::max(est.worst, std::fabs(hs[t * 4 + j] - st[j]) / (1 + std::fabs(st[j])));
    }
    std::vector<double> ref(c.V, 0.0);
    double rmax = 0;
    if (maskf[t] != 0) {
      const double scale = g / c.T;
      for (int64_t v = 0; v < c.V; v++) {
        const double x = (double)zf[t * c.V + v] / c.T;
        ref[v] = ((v == y[t] ? 1.0 : 0.0) - std::exp(x - refs[t].lse)) * scale;
        if (std::isfinite(ref[v])) rmax = std::max(rmax, std::fabs(ref[v]));
      }
    }
    for (int64_t v = 0; v < c.V; v++) {
      const double o = hd[t * c.V + v];
      ed.nan_check(o, ref[v]);
      if (maskf[t] == 0 && o != 0) ed.bad_nan++;  // masked rows must be exactly 0
      if (std::isfinite(ref[v]) && rmax > 0) {
        ed.worst = std::max(ed.worst, std::fabs(o - ref[v]) / rmax - slack);
        num += (o - ref[v]) * (o - ref[v]);
        den += ref[v] * ref[v];
      }
    }
  }
  char name[200];
  snprintf(name, sizeof name, "fused %s->%s%s N=%lld V=%lld mag=%g T=%g mask=%s ref=%d delta=%g C=%d: logp", c.bf16 ? "bf16" : "f32",
           out_bf16 ? "bf16" : "f32", in_place ? " in place" : "", (long long)c.N, (long long)c.V, c.mag, c.T, u8_mask ? "u8" : "f32",
           (int)with_ref, delta, cluster);
  report(name, el, 2e-6);
  report("  stats (w·l, clipped, k3, rho)", est, stats_tol);
  snprintf(name, sizeof name, "  dlogits (max|d−ref|/rowmax; rel-l2 %.1e; dlogp f32-logp shift %.1e)", std::sqrt(num / std::max(den, 1e-300)), g_shift);
  report(name, ed, out_bf16 ? 4e-3 : 1e-5);
}

static void check_kl() {
  const int64_t n = 100003;
  std::normal_distribution<double> nd(0, 1);
  std::vector<float> a(n), b(n);
  for (int64_t i = 0; i < n; i++) {
    a[i] = (float)(-3 + nd(rng));
    b[i] = (float)(a[i] + (i % 10 == 0 ? 8 * nd(rng) : 0.5 * nd(rng)));
  }
  Dev<float> da(n), db(n), kl(n), dl(n);
  da.up(a);
  db.up(b);
  for (int est = 0; est < 4; est++) {
    kl.poison();
    dl.poison();
    CK(kl_launch(da.p, db.p, n, est, kl.p, dl.p, 0));
    CK(cudaDeviceSynchronize());
    auto hk = kl.down(), hd = dl.down();
    Err e;
    for (int64_t i = 0; i < n; i++) {
      const double d = (double)b[i] - a[i];
      double k, g;
      if (est == 0) k = -d, g = 1;
      else if (est == 1) k = 0.5 * d * d, g = -d;
      else if (est == 2) k = std::expm1(d) - d, g = -std::expm1(d);
      else {
        const bool dc = d < -20 || d > 20;
        const double dd = std::min(std::max(d, -20.0), 20.0), kk = std::expm1(dd) - dd;
        const bool kc = kk < -10 || kk > 10;
        k = std::min(std::max(kk, -10.0), 10.0);
        g = dc || kc ? 0 : -std::expm1(d);
      }
      e.nan_check(hk[i], k);
      e.nan_check(hd[i], g);
      if (std::isfinite(k)) e.worst = std::max(e.worst, std::fabs(hk[i] - k) / (1e-30 + std::fabs(k)) * (std::fabs(k) > 1e-30));
      if (std::isfinite(g)) e.worst = std::max(e.worst, std::fabs(hd[i] - g) / (1e-30 + std::fabs(g)) * (std::fabs(g) > 1e-30));
    }
    char name[64];
    snprintf(name, sizeof name, "kl estimator %d (relative)", est);
    report(name, e, 1e-6);
  }
}

static void check_grpo() {
  std::normal_distribution<double> nd(0, 1);
  // advantages: B = 96, groups of 8 (one all-equal group)
  {
    const int64_t B = 96, G = 8;
    std::vector<float> r(B);
    for (auto& v : r) v = (float)(rng() % 5);
    for (int i = 8; i < 16; i++) r[i] = 2;
    Dev<float> dr(B), out(B);
    dr.up(r);
    for (int scale = 0; scale < 3; scale++) {
      out.poison();
      CK(grpo_advantages_launch(dr.p, B, G, scale, 1e-4, out.p, 0));
      CK(cudaDeviceSynchronize());
      auto h = out.down();
      double bm = 0, bss = 0;
      for (auto v : r) bm += v;
      bm /= B;
      for (auto v : r) bss += (v - bm) * (v - bm);
      const double bstd = std::sqrt(bss / (B - 1));
      Err e;
      for (int64_t g0 = 0; g0 < B; g0 += G) {
        double s = 0, ss = 0;
        bool eq = true;
        for (int64_t i = g0; i < g0 + G; i++) s += r[i], eq = eq && r[i] == r[g0];
        const double m = s / G;
        for (int64_t i = g0; i < g0 + G; i++) ss += (r[i] - m) * (r[i] - m);
        const double div = scale == 0 ? std::sqrt(ss / (G - 1)) + 1e-4 : scale == 1 ? bstd + 1e-4 : 1;
        for (int64_t i = g0; i < g0 + G; i++) {
          const double ref = eq ? 0 : (r[i] - m) / div;
          e.nan_check(h[i], ref);
          e.worst = std::max(e.worst, std::fabs(h[i] - ref) / (1e-6 + std::fabs(ref)) * (ref != 0));
          if (ref == 0 && h[i] != 0) e.bad_nan++;
        }
      }
      char name[64];
      snprintf(name, sizeof name, "advantages scale %d (relative)", scale);
      report(name, e, 1e-6);
    }
  }
  // loss: B = 6, T = 300; sequence 2 has an empty mask
  const int64_t B = 6, T = 300, n = B * T;
  std::vector<float> logp(n), old(n), ref(n), adv(B), mf(n);
  std::vector<uint8_t> mu(n);
  for (int64_t i = 0; i < n; i++) {
    logp[i] = (float)(-2 + nd(rng));
    old[i] = (float)(logp[i] + 0.3 * nd(rng));
    ref[i] = (float)(logp[i] + 0.3 * nd(rng));
    const int64_t b = i / T, t = i % T;
    const bool on = b != 2 && t < T - 37 * b;
    mf[i] = on;
    mu[i] = on;
  }
  for (auto& a : adv) a = (float)nd(rng);
  Dev<float> dl(n), dold(n), dref(n), dadv(B), dmf(n), dg(n);
  Dev<uint8_t> dmu(n);
  Dev<double> work(gr::loss_work_doubles(B));
  dl.up(logp);
  dold.up(old);
  dref.up(ref);
  dadv.up(adv);
  dmf.up(mf);
  dmu.up(mu);
  for (int cfg = 0; cfg < 8; cfg++) {
    gr::LossParams p;
    p.eps_low = 0.2;
    p.eps_high = 0.28;
    p.delta = cfg == 3 ? 1.5 : 0;
    p.beta = cfg == 5 ? 0 : 0.04;
    p.sequence_level = cfg >= 4 && cfg < 6;
    p.agg = cfg % 4;
    p.max_len = 400;
    p.global_tokens = cfg == 7 ? 5000 : 0;
    const bool u8 = cfg & 1;
    dg.poison();
    work.poison();
    CK(u8 ? grpo_loss_launch(dl.p, dold.p, dref.p, dadv.p, dmu.p, B, T, p, dg.p, work.p, 0)
          : grpo_loss_launch(dl.p, dold.p, dref.p, dadv.p, dmf.p, B, T, p, dg.p, work.p, 0));
    CK(cudaDeviceSynchronize());
    auto hg = dg.down();
    auto hw = work.down();
    // reference (the oracle's loop, f64)
    std::vector<double> nb(B, 0);
    double total = 0, ne = 0;
    for (int64_t b = 0; b < B; b++) {
      for (int64_t t = 0; t < T; t++) nb[b] += mf[b * T + t] != 0;
      total += nb[b];
      ne += nb[b] > 0;
    }
    const double global = p.global_tokens > 0 ? p.global_tokens : total;
    double loss = 0, clip = 0, kl = 0, ratio = 0;
    Err e;
    for (int64_t b = 0; b < B; b++) {
      const double w = p.agg == 0 ? (nb[b] > 0 ? 1 / (nb[b] * ne) : 0) : p.agg == 1 ? 1 / total : p.agg == 2 ? 1 / (B * p.max_len) : 1 / global;
      double slr = 0;
      if (p.sequence_level && nb[b] > 0) {
        for (int64_t t = 0; t < T; t++) if (mf[b * T + t] != 0) slr += (double)logp[b * T + t] - old[b * T + t];
        slr /= nb[b];
      }
      std::vector<double> rg(T, 0);
      double sg = 0;
      for (int64_t t = 0; t < T; t++) {
        const int64_t i = b * T + t;
        if (mf[i] == 0) continue;
        lp::FusedParams fp;
        fp.eps_low = p.eps_low;
        fp.eps_high = p.eps_high;
        fp.delta = p.delta;
        fp.beta = p.beta;
        double st[4];
        const double lr = p.sequence_level ? slr : (double)logp[i] - old[i];
        // token rules with the given log-ratio: ref_token takes logp − old, so pass old' = logp − lr
        const double gsum = ref_token(logp[i], (double)logp[i] - lr, true, ref[i], adv[b], w, fp, st);
        double gk = p.beta != 0 ? -p.beta * std::expm1((double)ref[i] - logp[i]) * w : 0;
        loss += st[0];
        clip += st[1];
        kl += st[2];
        ratio += st[3];
        if (!p.sequence_level) rg[t] = gsum;
        else {
          sg += gsum - gk;
          rg[t] = gk;
        }
      }
      if (p.sequence_level && nb[b] > 0) for (int64_t t = 0; t < T; t++) if (mf[b * T + t] != 0) rg[t] += sg / nb[b];
      for (int64_t t = 0; t < T; t++) {
        const double o = hg[b * T + t];
        e.nan_check(o, rg[t]);
        e.worst = std::max(e.worst, std::fabs(o - rg[t]) / (1e-12 + std::fabs(rg[t])) * (rg[t] != 0));
        if (rg[t] == 0 && o != 0) e.bad_nan++;
      }
    }
    const double want[4] = {loss, clip / total, kl / total, ratio / total};
    for (int j = 0; j < 4; j++) {
      e.nan_check(hw[j], want[j]);
      e.worst = std::max(e.worst, std::fabs(hw[j] - want[j]) / (1e-300 + std::fabs(want[j])) * (want[j] != 0));
    }
    char name[96];
    snprintf(name, sizeof name, "grpo loss agg=%d seq=%d delta=%g beta=%g mask=%s (relative)", p.agg, p.sequence_level, p.delta, p.beta, u8 ? "u8" : "f32");
    report(name, e, 1e-6);
  }
}

// ---------------------------------------------------------------- timing

// bf16 logits ~ uniform(−8, 8) with a few large ones (like a trained LM head's spread)
__global__ void fill_bf16(uint16_t* z, int64_t n, uint64_t seed) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const uint32_t h = hash32(seed * 0x9E3779B97F4A7C15ull + i);
    float v = ((h >> 8) * (1.0f / 16777216.0f)) * 16.0f - 8.0f;
    if ((h & 1023) == 0) v += 12.0f;
    __nv_bfloat16 b = __float2bfloat16_rn(v);
    z[i] = *reinterpret_cast<uint16_t*>(&b);
  }
}

template <typename F>
static double median_ms(F launch, int reps) {
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  launch();  // warm-up
  CK(cudaGetLastError());
  CK(cudaDeviceSynchronize());
  std::vector<double> t;
  for (int i = 0; i < reps; i++) t.push_back(event_ms(a, b, launch));
  CK(cudaGetLastError());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return median_of(t);
}

static FILE* g_csv = nullptr;
static double g_copy_gbps = 0;
static void row(const char* name, int64_t N, int64_t V, double bytes, double ms) {
  const double gbps = bytes / (ms * 1e6);
  printf("  %-44s N=%6lld V=%6lld %9.3f ms %8.1f GB/s  %5.1f%% of copy\n", name, (long long)N, (long long)V, ms, gbps, 100 * gbps / g_copy_gbps);
  if (g_csv) fprintf(g_csv, "%s,%lld,%lld,%.0f,%.5f,%.1f,%.1f\n", name, (long long)N, (long long)V, bytes, ms, gbps, g_copy_gbps);
}

static void timings(int64_t Nmax, int64_t V) {
  {  // device copy bandwidth: 4 GiB -> 4 GiB, bytes read + written
    const size_t bytes = (size_t)4 << 30;
    void *a, *b;
    CK(cudaMalloc(&a, bytes));
    CK(cudaMalloc(&b, bytes));
    CK(cudaMemset(a, 1, bytes));
    const double ms = median_ms([&] { CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice)); }, 9);
    g_copy_gbps = 2.0 * bytes / (ms * 1e6);
    printf("device copy: %.3f ms for 2 x 4 GiB -> %.1f GB/s (read + write)\n", ms, g_copy_gbps);
    if (g_csv) fprintf(g_csv, "copy,0,0,%.0f,%.5f,%.1f,%.1f\n", 2.0 * bytes, ms, g_copy_gbps, g_copy_gbps);
    cudaFree(a);
    cudaFree(b);
  }
  const int64_t n = Nmax * V;
  Dev<uint16_t> z(n), dz(n);
  Dev<int32_t> y(Nmax);
  Dev<float> logp(Nmax), lse(Nmax), g(Nmax), old(Nmax), ref(Nmax), adv(Nmax), w(Nmax), mask(Nmax), stats(Nmax * 4);
  fill_bf16<<<1024, 256>>>(z.p, n, 7);
  {
    std::vector<int32_t> hy(Nmax);
    std::vector<float> hm(Nmax, 1.0f), ha(Nmax), hw(Nmax, 1.0f / Nmax), hg(Nmax);
    for (int64_t i = 0; i < Nmax; i++) {
      hy[i] = (int32_t)(rng() % V);
      ha[i] = (float)((int64_t)(rng() % 200) - 100) / 100.0f;
      hg[i] = 1e-3f;
    }
    y.up(hy);
    mask.up(hm);
    adv.up(ha);
    w.up(hw);
    g.up(hg);
  }
  CK(cudaDeviceSynchronize());
  // oldLogp, refLogp: the forward's logp (ratios near 1)
  CK(logprob_forward_launch(z.p, y.p, Nmax, V, 1.0f, logp.p, lse.p, (float*)nullptr, 0));
  CK(cudaMemcpy(old.p, logp.p, Nmax * 4, cudaMemcpyDeviceToDevice));
  CK(cudaMemcpy(ref.p, logp.p, Nmax * 4, cudaMemcpyDeviceToDevice));
  CK(cudaDeviceSynchronize());
  lp::FusedParams p;
  p.V = V;
  p.T = 2048;
  p.inv_t = 1.0f;
  p.eps_low = 0.2;
  p.eps_high = 0.28;
  p.delta = 0;
  p.beta = 0.04;
  for (int64_t N = Nmax; N >= 4096; N /= 2) {
    p.N = N;
    const double zb = (double)N * V * 2;
    row("forward bf16 (logp, lse)", N, V, zb,
        median_ms([&] { CK(logprob_forward_launch(z.p, y.p, N, V, 1.0f, logp.p, lse.p, (float*)nullptr, 0)); }, 7));
    if (N == Nmax) {
      row("forward bf16 + entropy", N, V, zb, median_ms([&] { CK(logprob_forward_launch(z.p, y.p, N, V, 1.0f, logp.p, lse.p, stats.p, 0)); }, 7));
      // backward into an f32 buffer of N/2 rows (dz holds N·V bf16 = N/2·V f32)
      const int64_t Nh = N / 2;
      row("backward bf16 -> f32", Nh, V, (double)Nh * V * 6,
          median_ms([&] { CK(logprob_backward_launch(z.p, y.p, lse.p, g.p, Nh, V, 1.0f, (float*)dz.p, 0)); }, 7));
    }
    for (int c : {0, 4, 8, -1}) {
      if (N != Nmax && c != 0) continue;
      char name[64];
      snprintf(name, sizeof name, "fused bf16 -> bf16 (C=%s)", c == 0 ? "auto" : c == -1 ? "1, L2" : std::to_string(c).c_str());
      row(name, N, V, 2 * zb, median_ms([&] { CK(grpo_fused_launch(z.p, y.p, old.p, ref.p, adv.p, mask.p, w.p, p, logp.p, dz.p, stats.p, 0, c)); }, 7));
    }
  }
  p.N = Nmax;
  // in place over a copy (values change every rep but stay finite and non-zero)
  CK(cudaMemcpy(dz.p, z.p, n * 2, cudaMemcpyDeviceToDevice));
  row("fused bf16 -> bf16 in place (C=auto)", Nmax, V, 4.0 * Nmax * V,
      median_ms([&] { CK(grpo_fused_launch(dz.p, y.p, old.p, ref.p, adv.p, mask.p, w.p, p, logp.p, dz.p, stats.p, 0, 0)); }, 7));
  printf("fused cluster size chosen for V=%lld bf16: %d\n", (long long)V, fused_cluster_size(V * 2));
}

int main(int argc, char** argv) {
  const char* csv = argc > 1 ? argv[1] : "logprob_cuda.csv";
  const bool quick = argc > 2 && std::string(argv[2]) == "quick";
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  printf("device: %s, %d SMs, L2 %d MB, cc %d.%d\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize >> 20, prop.major, prop.minor);
  printf("== correctness (fp64 reference; outputs poisoned with 0xFF first)\n");
  for (const Case& c : {Case{9, 1, false, 3, 1}, Case{13, 7, false, 3, 0.7f}, Case{11, 1000, true, 5, 1}, Case{7, 2049, false, 5, 1.3f},
                        Case{10, 4099, true, 1e4, 1}, Case{6, 151936, true, 1e4, 1}, Case{6, 151936, false, 8, 0.9f},
                        Case{5, 151939, true, 8, 1}}) {
    check_forward_backward(c, false);
  }
  check_forward_backward(Case{6, 30011, false, 6, 1}, true);
  check_forward_backward(Case{6, 1000, false, 6, 0.8f}, true);
  // fused: every in/out dtype, in place, masks, ref/delta, forced cluster sizes, ragged V
  check_fused(Case{16, 151936, true, 8, 1}, true, true, false, true, 0, 0, 1e-5);
  check_fused(Case{16, 151936, true, 8, 1}, true, false, true, true, 1.5, 4, 1e-5);
  check_fused(Case{16, 151936, true, 8, 1}, false, false, false, false, 0, -1, 1e-5);
  check_fused(Case{12, 151939, true, 8, 0.7f}, true, true, true, true, 0, 0, 1e-5);
  check_fused(Case{12, 151939, true, 8, 0.7f}, false, false, false, true, 0, 8, 1e-5);
  check_fused(Case{8, 151936, false, 6, 1}, false, true, false, true, 0, 0, 1e-5);
  check_fused(Case{8, 50001, false, 6, 1.1f}, true, false, true, true, 2.0, 2, 1e-5);
  check_fused(Case{8, 1000, true, 4, 1}, true, true, false, true, 0, 0, 1e-5);
  check_fused(Case{20, 13, false, 4, 1}, false, false, true, true, 0, 0, 1e-5);
  check_fused(Case{20, 5, true, 4, 1}, true, false, false, true, 0, 1, 1e-5);
  // bf16 ±1e4: logp (f32, ~1e4) carries absolute error ~1e-3 into ρ = exp(logp − old): stats looser
  check_fused(Case{8, 151936, true, 1e4, 1}, true, true, false, true, 0, 0, 2e-3);
  check_kl();
  check_grpo();
  printf("== correctness: %s (%d failing checks)\n", g_fail ? "FAIL" : "all ok", g_fail);
  if (quick) return g_fail ? 1 : 0;
  g_csv = fopen(csv, "w");
  if (g_csv) fprintf(g_csv, "kernel,N,V,bytes,ms,GBps,copyGBps\n");
  printf("== timings (cudaEvent medians; bytes = each input read once + each output written once)\n");
  timings(32768, 151936);
  if (g_csv) fclose(g_csv);
  return g_fail ? 1 : 0;
}
