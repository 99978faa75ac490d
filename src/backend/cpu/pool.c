/*
 * The CPU backend's thread pool: n - 1 worker threads plus the caller's own
 * thread, which always runs share 0 of a job.
 *
 * Decode calls cpu_pool_run about 200 times per token with a few hundred
 * microseconds of work each, so the wake-up must cost far less than that.
 * A run publishes (fn, ctx) and bumps a generation counter; workers that
 * finished the previous run recently are still spinning on that counter
 * and start within a few hundred nanoseconds. A worker that has spun for
 * CPU_POOL_SPIN_NS without news goes to sleep on a condition variable, so
 * an idle engine costs no CPU; the runner only touches the mutex when
 * somebody sleeps. Completion works the same way in reverse: the caller
 * spins on the count of pending workers, then sleeps.
 *
 * The "sleepers" / "caller_waiting" handshakes are the classic Dekker
 * pattern on sequentially consistent atomics: the sleeper announces itself
 * and then re-checks the condition; the waker changes the condition and
 * then checks for sleepers. One of the two always sees the other.
 *
 * One run at a time: a pool is driven by one thread, and a job must not
 * call cpu_pool_run on its own pool.
 *
 * The pool also owns one growable scratch buffer for cpu_matmul (see
 * matmul_impl.h), so a matmul call never allocates in steady state.
 */
#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_impl.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* How long an idle worker (or the waiting caller) spins before sleeping.
 * Long enough to bridge the gap between two matmuls of one token, short
 * enough that a pool between requests goes quiet at once. */
#define CPU_POOL_SPIN_NS 300000

typedef struct cpu_worker {
    cpu_pool *pool;
    int ith;
    pthread_t thread;
} cpu_worker;

struct cpu_pool {
    int n_threads;
    cpu_worker *workers; /* [n_threads - 1]; worker i runs share i + 1 */
    int n_started;       /* workers whose thread exists */

    void (*fn)(void *ctx, int ith, int nth); /* the current job */
    void *ctx;
    atomic_uint gen;     /* bumped once per run (and once to quit) */
    atomic_int pending;  /* workers that have not finished this run */
    atomic_int sleepers; /* workers blocked (or about to) on `wake` */
    atomic_bool caller_waiting;
    atomic_bool quit;

    pthread_mutex_t mutex;
    pthread_cond_t wake; /* workers: gen changed */
    pthread_cond_t done; /* caller: pending reached 0 */

    void *scratch; /* 64-aligned, scratch_bytes long; see cpu_pool_scratch */
    size_t scratch_bytes;
};

static int64_t pool_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spins until *gen differs from seen or the spin budget runs out; returns
 * true when it changed. The clock is read only every 256 pauses. */
static bool pool_spin_gen(atomic_uint *gen, unsigned seen) {
    int64_t start = pool_now_ns();
    for (unsigned i = 1;; i++) {
        if (atomic_load_explicit(gen, memory_order_acquire) != seen) return true;
        cpu_relax();
        if ((i & 255) == 0 && pool_now_ns() - start > CPU_POOL_SPIN_NS) return false;
    }
}

static void *pool_worker_main(void *arg) {
    cpu_worker *wk = arg;
    cpu_pool *pool = wk->pool;
    unsigned seen = 0; /* the pool starts at generation 0 */
    for (;;) {
        if (!pool_spin_gen(&pool->gen, seen)) {
            pthread_mutex_lock(&pool->mutex);
            atomic_fetch_add(&pool->sleepers, 1);
            while (atomic_load(&pool->gen) == seen) pthread_cond_wait(&pool->wake, &pool->mutex);
            atomic_fetch_sub(&pool->sleepers, 1);
            pthread_mutex_unlock(&pool->mutex);
        }
        seen = atomic_load(&pool->gen);
        if (atomic_load(&pool->quit)) break;
        pool->fn(pool->ctx, wk->ith, pool->n_threads);
        if (atomic_fetch_sub(&pool->pending, 1) == 1 && atomic_load(&pool->caller_waiting)) {
            pthread_mutex_lock(&pool->mutex);
            pthread_cond_signal(&pool->done);
            pthread_mutex_unlock(&pool->mutex);
        }
    }
    return NULL;
}

/* Wakes every worker after gen was bumped. */
static void pool_wake_all(cpu_pool *pool) {
    if (atomic_load(&pool->sleepers) > 0) {
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
    }
}

cpu_pool *cpu_pool_create(int n_threads) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    if (n_threads > 1024) n_threads = 1024;
    cpu_pool *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->n_threads = n_threads;
    atomic_init(&pool->gen, 0);
    atomic_init(&pool->pending, 0);
    atomic_init(&pool->sleepers, 0);
    atomic_init(&pool->caller_waiting, false);
    atomic_init(&pool->quit, false);
    if (pthread_mutex_init(&pool->mutex, NULL)) {
        free(pool);
        return NULL;
    }
    if (pthread_cond_init(&pool->wake, NULL)) {
        pthread_mutex_destroy(&pool->mutex);
        free(pool);
        return NULL;
    }
    if (pthread_cond_init(&pool->done, NULL)) {
        pthread_cond_destroy(&pool->wake);
        pthread_mutex_destroy(&pool->mutex);
        free(pool);
        return NULL;
    }
    if (n_threads > 1) {
        pool->workers = calloc((size_t)n_threads - 1, sizeof *pool->workers);
        if (!pool->workers) goto fail;
        for (int i = 0; i < n_threads - 1; i++) {
            pool->workers[i].pool = pool;
            pool->workers[i].ith = i + 1;
            if (pthread_create(&pool->workers[i].thread, NULL, pool_worker_main, &pool->workers[i]))
                goto fail;
            pool->n_started++;
        }
    }
    return pool;
fail:
    cpu_pool_free(pool);
    return NULL;
}

int cpu_pool_size(const cpu_pool *pool) { return pool ? pool->n_threads : 1; }

void cpu_pool_run(cpu_pool *pool, void (*fn)(void *ctx, int ith, int nth), void *ctx) {
    if (!pool || pool->n_threads == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store(&pool->pending, pool->n_threads - 1);
    atomic_fetch_add(&pool->gen, 1);
    pool_wake_all(pool);

    fn(ctx, 0, pool->n_threads);

    int64_t start = pool_now_ns();
    for (unsigned i = 1; atomic_load_explicit(&pool->pending, memory_order_acquire) != 0; i++) {
        cpu_relax();
        if ((i & 255) == 0 && pool_now_ns() - start > CPU_POOL_SPIN_NS) {
            pthread_mutex_lock(&pool->mutex);
            atomic_store(&pool->caller_waiting, true);
            while (atomic_load(&pool->pending) != 0) pthread_cond_wait(&pool->done, &pool->mutex);
            atomic_store(&pool->caller_waiting, false);
            pthread_mutex_unlock(&pool->mutex);
            break;
        }
    }
}

void cpu_pool_free(cpu_pool *pool) {
    if (!pool) return;
    if (pool->n_started > 0) {
        atomic_store(&pool->quit, true);
        atomic_fetch_add(&pool->gen, 1);
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->wake);
        pthread_mutex_unlock(&pool->mutex);
        for (int i = 0; i < pool->n_started; i++) pthread_join(pool->workers[i].thread, NULL);
    }
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->workers);
    free(pool->scratch);
    free(pool);
}

void *cpu_pool_scratch(cpu_pool *pool, size_t bytes) {
    if (!pool) return NULL;
    if (bytes <= pool->scratch_bytes) return pool->scratch;
    size_t want = (bytes + (bytes >> 2) + 4095) & ~(size_t)4095; /* grow by 25% steps */
    free(pool->scratch);
    pool->scratch = aligned_alloc(64, want);
    pool->scratch_bytes = pool->scratch ? want : 0;
    return pool->scratch;
}
