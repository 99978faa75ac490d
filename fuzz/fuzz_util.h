/*
 * Shared helpers of the libFuzzer targets in fuzz/ (see fuzz/README.md).
 *
 * The loaders under test take paths, not buffers, so a target puts its
 * input where a path can reach it: one file in a memfd (no disk traffic,
 * reached as /proc/self/fd/N), or several files in a private scratch
 * directory (tmpfs when /dev/shm exists) created once per process, so
 * parallel fuzzing jobs never share files.
 *
 * Multi-file inputs are split on FUZZ_SEP ("\n--8<--\n", in each target's
 * dictionary): part 0 before the first separator, part 1 after it, ...
 * A missing part is absent, not empty, so the "file is missing" paths are
 * fuzzed too. Header-only: each target is one translation unit.
 */
#ifndef ZT_FUZZ_UTIL_H
#define ZT_FUZZ_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_SEP       "\n--8<--\n"
#define FUZZ_SEP_LEN   (sizeof FUZZ_SEP - 1)
#define FUZZ_MAX_PARTS 4

/* One piece of the input, pointing into it. */
typedef struct fuzz_part {
    const uint8_t *p;
    size_t n;
} fuzz_part;

/* Splits data on FUZZ_SEP into at most max parts (the last one takes the
 * rest, separators included); returns the number of parts (>= 1). */
static inline int fuzz_split(const uint8_t *data, size_t size, fuzz_part *parts, int max) {
    int n = 0;
    size_t start = 0;
    while (n < max - 1) {
        const uint8_t *hit = NULL;
        if (size - start >= FUZZ_SEP_LEN)
            hit = memmem(data + start, size - start, FUZZ_SEP, FUZZ_SEP_LEN);
        if (!hit) break;
        size_t end = (size_t)(hit - data);
        parts[n++] = (fuzz_part){data + start, end - start};
        start = end + FUZZ_SEP_LEN;
    }
    parts[n++] = (fuzz_part){data + start, size - start};
    return n;
}

/* Writes n bytes to fd from offset 0 and truncates the file to n. Returns
 * 0, or -1 on a write error (the caller skips the input). */
static inline int fuzz_fd_fill(int fd, const uint8_t *p, size_t n) {
    if (ftruncate(fd, 0) != 0) return -1;
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, p + done, n - done, (off_t)done);
        if (w <= 0) return -1;
        done += (size_t)w;
    }
    return 0;
}

/* An anonymous in-memory file and a path that opens it. */
typedef struct fuzz_memfile {
    int fd;
    char path[64];
} fuzz_memfile;

static inline int fuzz_memfile_open(fuzz_memfile *f, const char *name) {
    f->fd = memfd_create(name, MFD_CLOEXEC);
    if (f->fd < 0) return -1;
    snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
    return 0;
}

/* ---- a scratch directory for multi-file inputs ------------------------ */

static char fuzz_dir_path[256];

static inline void fuzz_dir_clear(void) {
    DIR *d = opendir(fuzz_dir_path);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static inline void fuzz_dir_remove(void) {
    if (!fuzz_dir_path[0]) return;
    fuzz_dir_clear();
    rmdir(fuzz_dir_path);
}

/* Creates the process's scratch directory (removed at exit). Returns its
 * path, or NULL. */
static inline const char *fuzz_dir_create(const char *tag) {
    struct stat st;
    const char *base = getenv("TMPDIR");
    if (!base || !*base)
        base = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir_path, sizeof fuzz_dir_path, "%s/zt-fuzz-%s-XXXXXX", base, tag);
    if (!mkdtemp(fuzz_dir_path)) return NULL;
    atexit(fuzz_dir_remove);
    return fuzz_dir_path;
}

/* Writes part into the scratch directory as `name`. */
static inline int fuzz_dir_write(const char *name, const fuzz_part *part) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", fuzz_dir_path, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    int rc = fuzz_fd_fill(fd, part->p, part->n);
    close(fd);
    return rc;
}

/* A NUL-terminated malloc'd copy of n bytes (aborts on OOM: a harness bug). */
static inline char *fuzz_strndup(const uint8_t *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* A file of the repository, found from the working directory or the
 * directory of ZT_FUZZ_ROOT (the Makefile runs targets from the root). */
static inline const char *fuzz_repo_file(const char *rel, char *buf, size_t cap) {
    const char *root = getenv("ZT_FUZZ_ROOT");
    snprintf(buf, cap, "%s%s%s", root ? root : "", root ? "/" : "", rel);
    return buf;
}

#endif
