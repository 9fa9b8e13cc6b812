/*
 * bench/records_bench.c - encrypted records: in-process encrypt and decrypt
 * of 1 KiB values per second (file key; key server key through the data-key
 * cache), and uncached data-key round trips per second through a server.
 *
 *     records_bench [-s SECONDS] [-b BYTES] [-t THREADS] [-k KEY_URL]
 *
 * Without -k only the file key is measured. With -k https://host:port/NAME
 * (credentials from SBX_KMS_TOKEN, SBX_KMS_CACERT...; bench/records_bench.sh
 * starts a server and sets them) the cached KMS path and the datakey round
 * trips (1 thread and THREADS threads) are measured too.
 */
#include "strongbox/strongbox.h"
#include "strongbox/kms.h"

#include <pthread.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double seconds = 2.0;
static size_t value_len = 1024;

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
    fprintf(stderr, "records_bench: %s: %s\n", what, sbx_error_last()->message);
    exit(1);
}

/* Encrypt, then decrypt, value_len-byte records for `seconds` each. */
static void
bench_records(const char *label, const char *keyref)
{
    uint8_t *value = malloc(value_len);
    sbx_buf rec = SBX_BUF_INIT, plain = SBX_BUF_INIT;
    const char ctx[] = "bench.value.1";
    int type;
    if (value == NULL)
        exit(1);
    memset(value, 'x', value_len);
    if (sbx_record_encrypt(keyref, SBX_RECORD_BLOB, value, value_len, ctx, strlen(ctx), &rec) < 0)
        die(label); // warm up: loads the key / fills the cache
    double n = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 100; i++, n++) {
            rec.len = 0;
            if (sbx_record_encrypt(keyref, SBX_RECORD_BLOB, value, value_len, ctx, strlen(ctx),
                                   &rec) < 0)
                die(label);
        }
    } while ((t = now() - t0) < seconds);
    printf("%-28s encrypt %6zu B: %9.0f records/s  (%.1f MB/s)\n", label, value_len, n / t,
           n / t * (double)value_len / 1e6);
    n = 0;
    t0 = now();
    do {
        for (int i = 0; i < 100; i++, n++) {
            plain.len = 0;
            if (sbx_record_decrypt(&type, &plain, rec.ptr, rec.len, ctx, strlen(ctx)) < 0)
                die(label);
        }
    } while ((t = now() - t0) < seconds);
    printf("%-28s decrypt %6zu B: %9.0f records/s  (%.1f MB/s)\n", label, value_len, n / t,
           n / t * (double)value_len / 1e6);
    sbx_buf_dispose(&rec);
    sbx_buf_dispose(&plain);
    free(value);
}

typedef struct dk_job {
    sbx_kms_client *client;
    const char *name;
    long count;
} dk_job;

static void *
dk_loop(void *arg)
{
    dk_job *j = arg;
    static const sbx_kms_pair ctx[] = {{"sbx", "record"}};
    double t0 = now();
    while (now() - t0 < seconds) {
        sbx_kms_datakey dk;
        if (sbx_kms_datakey_new(j->client, j->name, ctx, 1, 256, false, &dk) < 0)
            die("datakey");
        sbx_kms_datakey_dispose(&dk);
        j->count++;
    }
    return NULL;
}

/* Uncached POST /v1/keys/NAME/datakey round trips with `threads` threads. */
static void
bench_datakey(const char *key_url, int threads)
{
    char *base = NULL, *name = NULL;
    sbx_kms_client *c = NULL;
    pthread_t tid[64];
    dk_job jobs[64];
    if (sbx_kms_parse_key_url(key_url, &base, &name) < 0 ||
        sbx_kms_client_new_from_env(&c, base, NULL) < 0)
        die(key_url);
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        jobs[i] = (dk_job){c, name, 0};
        pthread_create(&tid[i], NULL, dk_loop, &jobs[i]);
    }
    double total = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        total += (double)jobs[i].count;
    }
    double t = now() - t0;
    printf("datakey round trips, %2d thread%s: %9.0f /s  (%.2f ms each per thread)\n", threads,
           threads == 1 ? " " : "s", total / t, t * 1000.0 * threads / total);
    sbx_kms_client_free(c);
    free(base);
    free(name);
}

int
main(int argc, char **argv)
{
    const char *key_url = NULL;
    int threads = 8, c;
    while ((c = getopt(argc, argv, "s:b:t:k:")) != -1) {
        switch (c) {
        case 's':
            seconds = atof(optarg);
            break;
        case 'b':
            value_len = (size_t)atol(optarg);
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'k':
            key_url = optarg;
            break;
        default:
            fprintf(stderr, "usage: records_bench [-s SECONDS] [-b BYTES] [-t THREADS] "
                            "[-k KEY_URL]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || seconds <= 0)
        return 2;
    char dir[] = "/tmp/sbx-records-bench.XXXXXX", path[64], keyref[80];
    sbx_buf key = SBX_BUF_INIT;
    if (mkdtemp(dir) == NULL)
        return 1;
    snprintf(path, sizeof path, "%s/bench.key", dir);
    snprintf(keyref, sizeof keyref, "file:%s", path);
    FILE *f = fopen(path, "wx");
    if (f == NULL || sbx_record_key_generate(&key) < 0 || fchmod(fileno(f), 0600) != 0 ||
        fwrite(key.ptr, 1, key.len, f) != key.len || fclose(f) != 0)
        die("key file");
    sbx_buf_dispose(&key);
    bench_records("file key (cached)", keyref);
    unlink(path);
    rmdir(dir);
    if (key_url != NULL) {
        sbx_kms_init(); // a static link: registers the https:// key source
        bench_records("kms key (data-key cache)", key_url);
        bench_datakey(key_url, 1);
        bench_datakey(key_url, threads);
    }
    sbx_record_cleanup();
    return 0;
}
