/*
 * CUDA matmul kernels against a float64 reference, for every weight type
 * the backend stores: the decode GEMV (int8 activations for the quantized
 * types, f32 for the float types) at 1, 3 and 8 rows, and the tensor-core
 * GEMM (f16 activations) whole and split over K. Weights are random
 * normal rows quantized by the reference quantizer; activations random
 * normal; outputs poisoned before the run (checked for NaN = unwritten).
 *
 * Bounds (relative L2 of the output):
 *   GEMV, quantized weights: 2e-2 (int8 activations: ~0.5% expected)
 *   GEMV, float weights:     1e-5 (f32 arithmetic)
 *   GEMM:                    5e-3 (f16 activations and f16 weight tiles)
 */
#include "../test.h"
#include "../unit/rng.h"
#include "backend/cuda/cuda_backend.h"
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int have_gpu(void) {
    zt_error err = {0};
    if (zt_cuda_backend.probe(&err) == ZT_OK) return 1;
    fprintf(stderr, "  no usable CUDA device: %s\n", err.msg);
    return 0;
}

/* Relative L2 error of the chosen kernel on a random [n_out][n_in] tensor
 * of `type` and n_rows random activation rows; -1 on a failure. */
static double matmul_error(int type, int n_out, int n_in, int n_rows, int path, uint64_t seed) {
    test_rng rng = rng_seed(seed);
    size_t row = quant_row_bytes(type, n_in);
    uint8_t *data = malloc(row * n_out);
    float *wf = malloc(sizeof(float) * (size_t)n_out * n_in);
    float *x = malloc(sizeof(float) * (size_t)n_rows * n_in);
    float *y = malloc(sizeof(float) * (size_t)n_rows * n_out);
    double e = 0, nrm = 0;
    int bad = 0;
    for (int o = 0; o < n_out; o++) {
        float *w = wf + (size_t)o * n_in;
        for (int i = 0; i < n_in; i++) w[i] = 0.1f * rng_normal(&rng) + (o % 7) * 0.01f;
        quant_quantize_row(type, w, data + (size_t)o * row, n_in);
        quant_dequant_row(type, data + (size_t)o * row, w, n_in);
    }
    for (size_t i = 0; i < (size_t)n_rows * n_in; i++) x[i] = rng_normal(&rng);
    zt_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "test.weight");
    t.type = type, t.n_dims = 2, t.ne[0] = n_in, t.ne[1] = n_out, t.ne[2] = t.ne[3] = 1;
    t.data = data, t.nbytes = row * n_out;
    zt_error err = {0};
    if (zt_cuda_test_matmul(&t, x, n_rows, path, y, &err) != ZT_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        bad = 1;
    }
    for (int r = 0; r < n_rows && !bad; r++)
        for (int o = 0; o < (path % 10 == 3 ? n_out / 2 : n_out); o++) {
            double ref = 0;
            for (int i = 0; i < n_in; i++)
                ref += (double)wf[(size_t)o * n_in + i] * x[(size_t)r * n_in + i];
            if (path % 10 == 3) { /* silu(gate row o) * up row o + n_out / 2 */
                double up = 0;
                for (int i = 0; i < n_in; i++)
                    up += (double)wf[(size_t)(o + n_out / 2) * n_in + i] * x[(size_t)r * n_in + i];
                ref = ref / (1.0 + exp(-ref)) * up;
            }
            double got = y[(size_t)r * n_out + o];
            if (isnan(got)) bad = 1;
            e += (got - ref) * (got - ref), nrm += ref * ref;
        }
    free(data), free(wf), free(x), free(y);
    if (bad) return -1;
    double rel = sqrt(e / nrm);
    fprintf(stderr, "  type %-5s path %d rows %d: rel L2 %.2e\n", quant_type_info(type)->name, path,
            n_rows, rel);
    return rel;
}

static void check_type(int *test_failed_, int type, double gemv_tol) {
    if (!have_gpu()) {
        CHECK(0);
        return;
    }
    /* odd shapes on purpose: rows not a multiple of the block split, a
     * row length that is not a multiple of 64 (K-quants need 256) */
    int n_in = type == ZT_Q4_K || type == ZT_Q5_K || type == ZT_Q6_K ? 768 : 800;
    for (int rows = 1; rows <= 8; rows += rows == 1 ? 2 : 5) {
        double e = matmul_error(type, 301, n_in, rows, 0, 10 + rows);
        CHECK(e >= 0 && e < gemv_tol);
    }
    double e1 = matmul_error(type, 301, n_in, 45, 1, 77);
    CHECK(e1 >= 0 && e1 < 5e-3);
    double e2 = matmul_error(type, 260, n_in, 130, 2, 78);
    CHECK(e2 >= 0 && e2 < 5e-3);
    /* gate|up + silu: 150 outputs (not a multiple of the 64 a block
     * covers), rows past one BM = 128 tile */
    double e3 = matmul_error(type, 300, n_in, 130, 3, 79);
    CHECK(e3 >= 0 && e3 < 5e-3);
    /* the tail split of the prefill GEMMs: whole tiles, then the rest of
     * the outputs split over K (the weights' row offset, C's column one) */
    double e4 = matmul_error(type, 301, n_in, 130, 4, 80);
    CHECK(e4 >= 0 && e4 < 5e-3);
    /* the small-M tiles (BM 32 and 64) with 1-4 k-steps of weights in
     * flight: when the loads are issued changes, the sums do not (the same
     * error to the last bit without a K split); split 6 leaves each split
     * fewer k-steps than the deepest ring */
    double d32 = 0, d64 = 0, dsilu = 0;
    for (int d = 1; d <= 4; d++) {
        const int o = 10 * d;
        double a = matmul_error(type, 301, n_in, 27, o + 1, 81);
        double b = matmul_error(type, 301, n_in, 45, o + 1, 77);
        double c = matmul_error(type, 300, n_in, 27, o + 3, 82);
        double e = matmul_error(type, 301, n_in, 27, o + 5, 83);
        CHECK(a >= 0 && a < 5e-3 && b >= 0 && b < 5e-3 && c >= 0 && c < 5e-3);
        CHECK(e >= 0 && e < 5e-3);
        if (d == 1) d32 = a, d64 = b, dsilu = c;
        CHECK(a == d32 && b == d64 && c == dsilu);
    }
}

TEST(test_cuda_matmul_q4_0_matches_reference) { check_type(test_failed_, ZT_Q4_0, 2e-2); }
TEST(test_cuda_matmul_q8_0_matches_reference) { check_type(test_failed_, ZT_Q8_0, 2e-2); }
TEST(test_cuda_matmul_q4_k_matches_reference) { check_type(test_failed_, ZT_Q4_K, 2e-2); }
TEST(test_cuda_matmul_q5_k_matches_reference) { check_type(test_failed_, ZT_Q5_K, 2e-2); }
TEST(test_cuda_matmul_q6_k_matches_reference) { check_type(test_failed_, ZT_Q6_K, 2e-2); }
TEST(test_cuda_matmul_f16_matches_reference) { check_type(test_failed_, ZT_F16, 1e-5); }
TEST(test_cuda_matmul_bf16_matches_reference) { check_type(test_failed_, ZT_BF16, 1e-5); }
