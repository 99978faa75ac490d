/*
 * A minimal test harness: TEST(name) { ... } registers a test; CHECK
 * records a failure and goes on, REQUIRE stops the test. The runner
 * (tests/unit/main.c) prints one line per test and "N passed, N failed".
 */
#ifndef ZT_TEST_H
#define ZT_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct test_case {
    const char *name;
    void (*fn)(int *failed);
    struct test_case *next;
} test_case;

void test_register(test_case *tc);

#define TEST(name)                                                                      \
    static void name(int *test_failed_);                                                \
    static test_case name##_case_ = {#name, name, NULL};                                \
    __attribute__((constructor)) static void name##_register_(void) {                   \
        test_register(&name##_case_);                                                   \
    }                                                                                   \
    static void name(int *test_failed_)

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
            *test_failed_ = 1;                                                          \
        }                                                                               \
    } while (0)

#define REQUIRE(cond)                                                                     \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "  %s:%d: REQUIRE(%s) failed\n", __FILE__, __LINE__, #cond); \
            *test_failed_ = 1;                                                            \
            return;                                                                       \
        }                                                                                 \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                 \
    do {                                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                                \
        if (a_ != b_) {                                                                    \
            fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", __FILE__,        \
                    __LINE__, #a, a_, #b, b_);                                             \
            *test_failed_ = 1;                                                             \
        }                                                                                  \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                              \
    do {                                                                                   \
        double a_ = (double)(a), b_ = (double)(b);                                         \
        if (!(fabs(a_ - b_) <= (tol))) {                                                   \
            fprintf(stderr, "  %s:%d: %s == %.9g, expected %.9g (tol %g)\n", __FILE__,     \
                    __LINE__, #a, a_, b_, (double)(tol));                                  \
            *test_failed_ = 1;                                                             \
        }                                                                                  \
    } while (0)

#define CHECK_STR(a, b)                                                                    \
    do {                                                                                   \
        const char *a_ = (a), *b_ = (b);                                                   \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                           \
            fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, \
                    #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");                           \
            *test_failed_ = 1;                                                             \
        }                                                                                  \
    } while (0)

/* Path of a file under tests/ (the runner chdirs to the repo root). */
#define TEST_DATA(rel) ("tests/" rel)
/* Scratch directory for files a test writes (created by the runner). */
const char *test_tmpdir(void);

#endif
