/*
 * fuzz/fuzz_util.h - shared helpers for the fuzz targets.
 *
 * FUZZ_CHECK reports a broken property (a round trip that does not round
 * trip, two paths that disagree) and abort()s, which libFuzzer records as a
 * crash with the input that caused it.
 */
#ifndef SBX_FUZZ_UTIL_H
#define SBX_FUZZ_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "strongbox/error.h"

#define FUZZ_CHECK(cond, what)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: property failed: %s (%s); last error: %s\n", __FILE__,         \
                    __LINE__, (what), #cond, sbx_error_last()->message);                           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
