/*
 * cli/progress.h - a progress bar for long encryptions and decryptions.
 *
 * A source filter that counts the bytes read through it and redraws one
 * status line on stderr (bytes, rate, time left) at most ten times a second,
 * never wider than the terminal (its width is read at each redraw; the bar,
 * then figures, are dropped from a narrow line).
 * It draws only when stderr is a terminal, the input is larger than
 * PROGRESS_MIN_BYTES and the user did not ask for --quiet.
 */
#ifndef SBX_CLI_PROGRESS_H
#define SBX_CLI_PROGRESS_H

#include "strongbox/strongbox.h"

#define PROGRESS_MIN_BYTES (8u * 1024 * 1024)

/**
 * Wrap src. total is the input size in bytes (0 = unknown: no bar).
 * When the bar would not be drawn, *out is src itself and *owned is false.
 */
int progress_source_new(sbx_source **out, bool *owned, sbx_source *src, uint64_t total,
                        const char *label, bool quiet);

/** Size of the regular file at path, or 0 when unknown (pipe, "-", error). */
uint64_t progress_file_size(const char *path);

#endif
