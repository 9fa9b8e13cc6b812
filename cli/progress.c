/*
 * cli/progress.c - the progress bar (see progress.h).
 */
#include "progress.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct progress {
    sbx_source base;
    sbx_source *src;
    uint64_t total, done;
    double start, last_draw;
    const char *label;
    bool drawn;
};

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
human(char *out, size_t cap, double bytes)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, cap, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
}

/*
 * The terminal's width, read at every redraw so that a resized window is
 * followed: stderr's window size, else $COLUMNS, else 80.
 */
static int
columns(void)
{
    struct winsize ws;
    int n;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    const char *env = getenv("COLUMNS");
    if (env != NULL && cli_parse_int(&n, env, 1, 100000))
        return n;
    return 80;
}

/*
 * The status line in at most room characters, the richest that fits: the
 * bar (10 to 30 wide) and every figure; a percentage instead of the bar;
 * fewer figures; and at last the label and percentage, cut to room.
 */
static void
layout(char *line, size_t cap, size_t room, const char *label, double fraction, const char *figures,
       const char *sizes)
{
    int pct = (int)(100 * fraction);
    size_t fixed = strlen(label) + strlen(figures) + 4; // "LABEL [" BAR "] " FIGURES
    if (room >= fixed + 10) {
        size_t width = room - fixed < 30 ? room - fixed : 30;
        size_t fill = (size_t)((double)width * fraction);
        char bar[31];
        memset(bar, '#', fill);
        memset(bar + fill, '.', width - fill);
        bar[width] = '\0';
        snprintf(line, cap, "%s [%s] %s", label, bar, figures);
        return;
    }
    const char *tails[] = {figures, sizes, ""};
    for (size_t i = 0; i < sizeof(tails) / sizeof(tails[0]); i++) {
        int n = snprintf(line, cap, "%s %3d%%%s%s", label, pct, tails[i][0] ? " " : "", tails[i]);
        if (n >= 0 && (size_t)n <= room)
            return;
    }
    line[room < cap ? room : cap - 1] = '\0';
}

static void
draw(struct progress *p, bool final)
{
    char done[32], total[32], rate[32], eta[32] = "", figures[160], sizes[80], line[512];
    double elapsed = now() - p->start;
    double speed = elapsed > 0 ? (double)p->done / elapsed : 0;
    double fraction = p->total ? (double)p->done / (double)p->total : 0;
    if (fraction > 1)
        fraction = 1;
    human(done, sizeof(done), (double)p->done);
    human(total, sizeof(total), (double)p->total);
    human(rate, sizeof(rate), speed);
    if (!final && speed > 0 && p->total > p->done) {
        unsigned left = (unsigned)((double)(p->total - p->done) / speed);
        snprintf(eta, sizeof(eta), "  %u:%02u left", left / 60, left % 60);
    } else if (final) {
        snprintf(eta, sizeof(eta), "  %.1f s", elapsed);
    }
    snprintf(sizes, sizeof(sizes), "%s / %s", done, total);
    snprintf(figures, sizeof(figures), "%s  %s/s%s", sizes, rate, eta);
    // Never the last column: some terminals wrap as soon as it is written.
    int cols = columns();
    layout(line, sizeof(line), cols > 1 ? (size_t)cols - 1 : 0, p->label, fraction, figures, sizes);
    fprintf(stderr, "\r%s\033[K", line);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
    p->drawn = true;
}

static int
progress_read(sbx_source *self, uint8_t *buf, size_t len, size_t *nread)
{
    struct progress *p = (struct progress *)self;
    int err = sbx_source_read(p->src, buf, len, nread);
    if (err < 0)
        return err;
    p->done += *nread;
    double t = now();
    if (*nread == 0 || t - p->last_draw >= 0.1) {
        p->last_draw = t;
        draw(p, *nread == 0);
    }
    return 0;
}

static void
progress_free(sbx_source *self)
{
    struct progress *p = (struct progress *)self;
    if (p->drawn && p->done < p->total)
        fputc('\n', stderr); /* leave the partial bar on its own line before any error */
    free(p);
}

int
progress_source_new(sbx_source **out, bool *owned, sbx_source *src, uint64_t total,
                    const char *label, bool quiet)
{
    *out = src;
    *owned = false;
    if (quiet || total < PROGRESS_MIN_BYTES || !isatty(STDERR_FILENO))
        return 0;
    struct progress *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return SBX_ENOMEM;
    p->base.read = progress_read;
    p->base.free = progress_free;
    p->src = src;
    p->total = total;
    p->label = label;
    p->start = p->last_draw = now();
    *out = &p->base;
    *owned = true;
    return 0;
}

uint64_t
progress_file_size(const char *path)
{
    struct stat st;
    if (path == NULL || strcmp(path, "-") == 0 || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    return (uint64_t)st.st_size;
}
