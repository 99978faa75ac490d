/*
 * The CUDA weight layouts, checked on the CPU: repacking a GGUF tensor and
 * dequantizing the streams (units.h, the same code the kernels run) must
 * give the reference dequantizer's floats, and the int8-activation dot
 * products must equal the float dot of the same numbers. These run without
 * a GPU, so a layout bug is caught before any device time is spent.
 */
#include "../test.h"
#include "../unit/rng.h"
#include "backend/cuda/repack.h"
#include "backend/cuda/units.h"
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A random [n_out][n_in] tensor of `type`, quantized from normal * 0.5
 * data with a per-row offset (so K-quant mins are exercised). */
static zt_tensor make_tensor(int type, int n_out, int n_in, uint64_t seed, float **ref) {
    zt_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "test.%d", type);
    t.type = type;
    t.n_dims = 2;
    t.ne[0] = n_in, t.ne[1] = n_out, t.ne[2] = t.ne[3] = 1;
    size_t row = quant_row_bytes(type, n_in);
    t.nbytes = row * (size_t)n_out;
    uint8_t *data = malloc(t.nbytes);
    float *x = malloc(sizeof(float) * (size_t)n_in);
    *ref = malloc(sizeof(float) * (size_t)n_in * n_out);
    test_rng rng = rng_seed(seed);
    for (int r = 0; r < n_out; r++) {
        float off = 0.3f * rng_normal(&rng);
        for (int i = 0; i < n_in; i++) x[i] = 0.5f * rng_normal(&rng) + off;
        quant_quantize_row(type, x, data + (size_t)r * row, n_in);
        quant_dequant_row(type, data + (size_t)r * row, *ref + (size_t)r * n_in, n_in);
    }
    free(x);
    t.data = data;
    return t;
}

static cu_streams streams_of(const cuda_host_mat *m) {
    cu_streams s = {m->wt, m->n_in, m->q, m->a1, m->a2, m->a3};
    return s;
}

/* Dequantizing every x-block of the repacked tensor (and every element
 * alone, the embedding lookup) reproduces the reference dequantizer;
 * returns the max abs difference. */
static double repack_dequant_error(int type, int expect_wt) {
    int n_out = 5, n_in = 512;
    float *ref;
    zt_tensor t = make_tensor(type, n_out, n_in, 1000 + (uint64_t)type, &ref);
    cuda_host_mat m;
    zt_error err = {0};
    double worst = 1e30;
    if (cuda_repack(&t, 0, &m, &err) != ZT_OK || m.wt != expect_wt) goto done;
    cu_streams s = streams_of(&m);
    worst = 0;
    for (int r = 0; r < n_out; r++)
        for (int xb = 0; xb < n_in / 32; xb++) {
            float out[32];
            cu_dequant_xb(&s, r, xb, out);
            for (int i = 0; i < 32; i++) {
                if (cu_dequant_elem(&s, r, xb * 32 + i) != out[i]) worst = 1e30;
                double d = fabs((double)out[i] - ref[(size_t)r * n_in + xb * 32 + i]);
                if (worst < 1e30 && (d > worst || isnan(out[i]))) worst = isnan(out[i]) ? 1e30 : d;
            }
        }
    cuda_host_mat_free(&m);
done:
    free((void *)t.data);
    free(ref);
    return worst;
}

TEST(test_cuda_repack_q4_0_dequant_matches_reference) {
    CHECK(repack_dequant_error(ZT_Q4_0, CW_Q4_0) < 1e-6);
}
TEST(test_cuda_repack_q8_0_dequant_matches_reference) {
    CHECK(repack_dequant_error(ZT_Q8_0, CW_Q8_0) < 1e-6);
}
TEST(test_cuda_repack_q4_k_dequant_matches_reference) {
    CHECK(repack_dequant_error(ZT_Q4_K, CW_Q4_K) < 1e-6);
}
TEST(test_cuda_repack_q5_k_dequant_matches_reference) {
    CHECK(repack_dequant_error(ZT_Q5_K, CW_Q5_K) < 1e-6);
}
TEST(test_cuda_repack_q6_k_dequant_matches_reference) {
    CHECK(repack_dequant_error(ZT_Q6_K, CW_Q6_K) < 1e-6);
}
TEST(test_cuda_repack_f16_bf16_are_copies) {
    CHECK(repack_dequant_error(ZT_F16, CW_F16) == 0);
    CHECK(repack_dequant_error(ZT_BF16, CW_BF16) == 0);
}
TEST(test_cuda_repack_f32_and_q5_0_become_f16) {
    /* f32 rounds to f16: |x| < 2 so the error is below 2^-10 */
    CHECK(repack_dequant_error(ZT_F32, CW_F16) < 1.0 / 1024);
    CHECK(repack_dequant_error(ZT_Q5_0, CW_F16) < 1.0 / 1024);
}

/* A float matrix whose rows are not a multiple of 32 long (llama_odd's
 * dim 120) is zero-padded: the values are kept exactly, the pad reads 0. */
TEST(test_cuda_repack_pads_short_float_rows_with_zeros) {
    const int types[2] = {ZT_F16, ZT_F32};
    for (int k = 0; k < 2; k++) {
        float *ref;
        zt_tensor t = make_tensor(types[k], 3, 48, 7, &ref);
        cuda_host_mat m;
        zt_error err = {0};
        REQUIRE(cuda_repack(&t, 0, &m, &err) == ZT_OK);
        CHECK(m.wt == CW_F16 && m.n_in == 64 && m.n_out == 3);
        cu_streams s = streams_of(&m);
        int nonzero = 0;
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < 64; i++) {
                float v = cu_dequant_elem(&s, r, i);
                if (i >= 48) {
                    CHECK(v == 0.0f);
                    continue;
                }
                nonzero += v != 0.0f;
                CHECK(fabs((double)v - ref[r * 48 + i]) <= (k == 0 ? 0.0 : 1.0 / 1024));
            }
        CHECK(nonzero > 100);
        cuda_host_mat_free(&m);
        free((void *)t.data);
        free(ref);
    }
}

TEST(test_cuda_act_quant_block_rounds_to_int8) {
    float v[32];
    int8_t q[32];
    test_rng rng = rng_seed(3);
    for (int i = 0; i < 32; i++) v[i] = rng_normal(&rng);
    v[5] = -3.0f; /* the largest magnitude: becomes -127 */
    float dx;
    int s0, s1;
    cu_act_quant_block(v, q, &dx, &s0, &s1);
    CHECK_NEAR(dx, 3.0f / 127.0f, 1e-9);
    CHECK_EQ_INT(q[5], -127);
    int a = 0, b = 0;
    for (int i = 0; i < 32; i++) {
        CHECK(fabsf(q[i] * dx - v[i]) <= dx * 0.5f + 1e-6f);
        if (i < 16)
            a += q[i];
        else
            b += q[i];
    }
    CHECK_EQ_INT(s0, a);
    CHECK_EQ_INT(s1, b);
}

/* The integer dot of each x-block equals the float dot of the dequantized
 * weights with the dequantized int8 activations (to float rounding), and
 * stays within the int8 quantization error of the float activations. */
static void dot_errors(int type, double *exact_err, double *act_err) {
    int n_out = 4, n_in = 768;
    float *ref;
    zt_tensor t = make_tensor(type, n_out, n_in, 2000 + (uint64_t)type, &ref);
    cuda_host_mat m;
    zt_error err = {0};
    *exact_err = *act_err = 1e30;
    if (cuda_repack(&t, 0, &m, &err) != ZT_OK) {
        free((void *)t.data);
        free(ref);
        return;
    }
    cu_streams s = streams_of(&m);
    test_rng rng = rng_seed(99);
    float *x = malloc(sizeof(float) * n_in);
    for (int i = 0; i < n_in; i++) x[i] = rng_normal(&rng);
    double e1 = 0, n1 = 0, e2 = 0, n2 = 0;
    for (int r = 0; r < n_out; r++) {
        double dev = 0, exact = 0, full = 0;
        for (int xb = 0; xb < n_in / 32; xb++) {
            int8_t q[32];
            float dx;
            int s0, s1;
            cu_act_quant_block(x + xb * 32, q, &dx, &s0, &s1);
            uint32_t xw[8];
            memcpy(xw, q, 32);
            dev += cu_dot_xb(&s, r, xb, xw, dx, s0, s1);
            for (int i = 0; i < 32; i++) {
                double w = ref[(size_t)r * n_in + xb * 32 + i];
                exact += w * (double)q[i] * dx;
                full += w * x[xb * 32 + i];
            }
        }
        e1 += (dev - exact) * (dev - exact), n1 += exact * exact;
        e2 += (dev - full) * (dev - full), n2 += full * full;
    }
    *exact_err = sqrt(e1 / n1);
    *act_err = sqrt(e2 / n2);
    free(x);
    cuda_host_mat_free(&m);
    free((void *)t.data);
    free(ref);
}

#define DOT_TEST(NAME, TYPE)                                                                       \
    TEST(NAME) {                                                                                   \
        double exact, act;                                                                         \
        dot_errors(TYPE, &exact, &act);                                                            \
        CHECK(exact < 1e-5); /* same numbers, float rounding only */                               \
        CHECK(act < 2e-2);   /* int8 activations: ~0.5% expected */                                \
    }
DOT_TEST(test_cuda_dot_q4_0_matches_float_dot, ZT_Q4_0)
DOT_TEST(test_cuda_dot_q8_0_matches_float_dot, ZT_Q8_0)
DOT_TEST(test_cuda_dot_q4_k_matches_float_dot, ZT_Q4_K)
DOT_TEST(test_cuda_dot_q5_k_matches_float_dot, ZT_Q5_K)
DOT_TEST(test_cuda_dot_q6_k_matches_float_dot, ZT_Q6_K)
