/* One error path for the whole library: a failing function calls
 * zt_fail(err, code, fmt, ...) and returns what it returns. */
#ifndef ZT_UTIL_ERROR_H
#define ZT_UTIL_ERROR_H

#include "zt.h"

/* Fills err (when not NULL) and returns code, so `return zt_fail(...)`. */
int zt_fail(zt_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message, e.g. with the file name: "model.gguf: ...". */
int zt_fail_prefix(zt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
