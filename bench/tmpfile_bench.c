/*
 * bench/tmpfile_bench.c - sbx_tmpfile() against plain tmpfile(3), same run.
 *
 *   tmpfile_bench [-s MiB] [-n random_ops] [-r random_file_MiB] [-b block] [-c aes|chacha]
 *
 * 1. sequential: fwrite the whole size in 1 MiB calls, rewind, fread it back;
 * 2. random: on a file of -r MiB, -n operations at random 4 KiB-aligned
 *    offsets, half fread and half fwrite of 4 KiB (fseek before each).
 * Both files live in /tmp. Sequential runs twice per kind in alternating order (best
 * kept). Prints MB/s for each and the ratio sbx/plain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "strongbox/strongbox.h"

#define MIB   (1024 * 1024)
#define CHUNK MIB
#define IO4K  4096

struct result {
    double write_mbs, read_mbs, random_mbs;
};

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *what)
{
    fprintf(stderr, "tmpfile_bench: %s failed\n", what);
    exit(1);
}

static void
sequential(FILE *f, uint8_t *buf, size_t mib, struct result *r)
{
    double t0 = now();
    for (size_t i = 0; i < mib; i++) {
        buf[0] = (uint8_t)i;
        if (fwrite(buf, 1, CHUNK, f) != CHUNK)
            die("fwrite");
    }
    if (fflush(f) != 0)
        die("fflush");
    double t1 = now();
    rewind(f);
    for (size_t i = 0; i < mib; i++) {
        if (fread(buf, 1, CHUNK, f) != CHUNK || buf[0] != (uint8_t)i)
            die("fread");
    }
    double t2 = now();
    r->write_mbs = (double)mib * MIB / 1e6 / (t1 - t0);
    r->read_mbs = (double)mib * MIB / 1e6 / (t2 - t1);
}

static uint64_t
xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void
random_io(FILE *f, uint8_t *buf, size_t file_mib, size_t ops, struct result *r)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL, slots = file_mib * MIB / IO4K;
    rewind(f);
    for (size_t i = 0; i < file_mib; i++) { // fill (not timed)
        if (fwrite(buf, 1, CHUNK, f) != CHUNK)
            die("fill");
    }
    fflush(f);
    double t0 = now();
    for (size_t i = 0; i < ops; i++) {
        uint64_t v = xorshift(&seed);
        if (fseeko(f, (off_t)((v >> 1) % slots) * IO4K, SEEK_SET) != 0)
            die("fseeko");
        if ((v & 1) ? fwrite(buf, 1, IO4K, f) != IO4K : fread(buf, 1, IO4K, f) != IO4K)
            die("random fread/fwrite");
    }
    fflush(f);
    r->random_mbs = (double)ops * IO4K / 1e6 / (now() - t0);
}

int
main(int argc, char **argv)
{
    size_t mib = 1024, rmib = 256, ops = 200000;
    struct sbx_tmpfile_options o = SBX_TMPFILE_OPTIONS_INIT;
    o.dir = "/tmp";
    for (int c; (c = getopt(argc, argv, "s:n:r:b:c:")) != -1;) {
        if (c == 's')
            mib = strtoul(optarg, NULL, 10);
        else if (c == 'n')
            ops = strtoul(optarg, NULL, 10);
        else if (c == 'r')
            rmib = strtoul(optarg, NULL, 10);
        else if (c == 'b')
            o.block_size = strtoul(optarg, NULL, 10);
        else if (c == 'c')
            o.cipher = strcmp(optarg, "chacha") == 0 ? SBX_TMPFILE_CHACHA20_POLY1305
                                                     : SBX_TMPFILE_AES_256_GCM;
        else
            return 2;
    }
    uint8_t *buf = malloc(CHUNK);
    if (buf == NULL || sbx_random_bytes(buf, CHUNK) != 0)
        die("setup");
    struct result plain = {0}, enc = {0}, r;
    FILE *p, *s;
    // Two rounds in alternating order, best of each: page-cache writeback left by one
    // 1 GiB file otherwise penalises whichever runs next.
    for (int round = 0; round < 2; round++) {
        for (int which = 0; which < 2; which++) {
            bool is_sbx = (which + round) % 2 == 0;
            FILE *f = is_sbx ? sbx_tmpfile_open(&o) : tmpfile();
            if (f == NULL)
                die(is_sbx ? sbx_error_last()->message : "tmpfile");
            sequential(f, buf, mib, &r);
            fclose(f);
            struct result *best = is_sbx ? &enc : &plain;
            best->write_mbs = r.write_mbs > best->write_mbs ? r.write_mbs : best->write_mbs;
            best->read_mbs = r.read_mbs > best->read_mbs ? r.read_mbs : best->read_mbs;
        }
    }
    p = tmpfile();
    s = sbx_tmpfile_open(&o);
    if (p == NULL || s == NULL)
        die("reopen");
    random_io(p, buf, rmib, ops, &plain);
    random_io(s, buf, rmib, ops, &enc);
    fclose(p);
    fclose(s);
    printf("sbx_tmpfile vs tmpfile(3) in /tmp: cipher %s, block %zu bytes\n",
           o.cipher == SBX_TMPFILE_AES_256_GCM ? "AES-256-GCM" : "ChaCha20-Poly1305",
           o.block_size ? o.block_size : (size_t)SBX_TMPFILE_DEFAULT_BLOCK);
    printf("%-34s %12s %12s %8s\n", "test", "tmpfile MB/s", "sbx MB/s", "ratio");
    printf("%-34s %12.0f %12.0f %7.0f%%\n", "sequential write (1 MiB fwrite)", plain.write_mbs,
           enc.write_mbs, 100 * enc.write_mbs / plain.write_mbs);
    printf("%-34s %12.0f %12.0f %7.0f%%\n", "sequential read (1 MiB fread)", plain.read_mbs,
           enc.read_mbs, 100 * enc.read_mbs / plain.read_mbs);
    double ps = 2 / (1 / plain.write_mbs + 1 / plain.read_mbs);
    double es = 2 / (1 / enc.write_mbs + 1 / enc.read_mbs);
    printf("%-34s %12.0f %12.0f %7.0f%%\n", "sequential write+read", ps, es, 100 * es / ps);
    printf("%-34s %12.0f %12.0f %7.0f%%\n", "random 4 KiB (50% read, 50% write)", plain.random_mbs,
           enc.random_mbs, 100 * enc.random_mbs / plain.random_mbs);
    printf("(sequential: %zu MiB; random: %zu ops on a %zu MiB file)\n", mib, ops, rmib);
    free(buf);
    return 0;
}
