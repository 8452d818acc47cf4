/*
 * Helpers shared by the example programs: CHECK counts passes and failures and prints
 * the library's last error on failure; fails_with tests a status and a fragment of the
 * last error message; path_join builds paths. Each program prints
 * "<name>: N passed, N failed" at the end and exits non-zero on any failure.
 */
#ifndef CDAD_EXAMPLES_CHECK_H
#define CDAD_EXAMPLES_CHECK_H

#include "cdad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks_passed = 0;
static int checks_failed = 0;

#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (cond) {                                                                 \
            checks_passed++;                                                        \
        } else {                                                                    \
            checks_failed++;                                                        \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                             \
            printf(__VA_ARGS__);                                                    \
            printf("  (last error: %s)\n", cdad_last_error_message());              \
        }                                                                           \
    } while (0)

/* True when `status` is `expected` and the last error message contains `fragment`. */
static inline int fails_with(cdad_status status, cdad_status expected, const char *fragment) {
    return status == expected && strstr(cdad_last_error_message(), fragment) != NULL;
}

/* Longest path the examples build. */
enum { PATH = 1024 };

/* out = a + "/" + b; stops the program on a path that does not fit in PATH bytes. */
static inline void path_join(char *out, const char *a, const char *b) {
    int n = snprintf(out, PATH, "%s/%s", a, b);
    if (n < 0 || n >= PATH) {
        fprintf(stderr, "path too long: %s/%s\n", a, b);
        exit(2);
    }
}

/* Prints the summary line and returns the process exit code. */
static inline int check_summary(const char *program) {
    printf("%s: %d passed, %d failed\n", program, checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}

#endif
