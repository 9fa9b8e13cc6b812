/*
 * cli/keygen.c - sbx keygen: make an X25519 identity, or print the
 * recipients of an identity file (-y), in the layout of age-keygen; with
 * --symmetric, a 32-byte record key file (strongbox/records.h).
 */
#include "cli.h"
#include "sign_cmds.h"

#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* RFC 3339 local time as Go prints it: 2006-01-02T15:04:05+01:00, or ...Z for UTC. */
static void
rfc3339_now(char out[32])
{
    time_t now = time(NULL);
    struct tm tm;
    char zone[8];
    localtime_r(&now, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(zone, sizeof(zone), "%z", &tm); // +hhmm
    if (strcmp(zone, "+0000") == 0 || strlen(zone) != 5)
        strcat(out, "Z");
    else
        snprintf(out + strlen(out), 8, "%.3s:%.2s", zone, zone + 3);
}

static int
write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/*
 * Create path 0600 at open, refusing to replace anything (a symbolic link
 * included), and write text to it: an unnamed file until complete, so an
 * interrupted keygen leaves no partial key.
 */
static int
write_new_secret_file(const char *path, const sbx_buf *text)
{
    sbx_sink *s = NULL;
    int err = sbx_sink_atomic_file_new_ex(&s, path, 0600, SBX_ATOMIC_NOREPLACE);
    if (err == 0 && (err = sbx_sink_write(s, text->ptr, text->len)) == 0)
        err = sbx_sink_finish(s);
    sbx_sink_free(s);
    if (err == SBX_EEXISTS) {
        cli_errorf("%s already exists; refusing to overwrite a key file", path);
        cli_hintf("choose another name, or remove %s first if you are sure it is not needed", path);
    } else if (err < 0) {
        cli_error_lib(NULL);
    }
    return err < 0 ? CLI_FAIL : CLI_OK;
}

/* "age1..." of an identity into out (NUL-terminated). */
static int
recipient_string(sbx_buf *out, const sbx_identity *id)
{
    sbx_recipient *r = NULL;
    int err;
    if ((err = sbx_identity_to_recipient(&r, id)) == 0 &&
        (err = sbx_recipient_to_string(r, out)) == 0)
        err = sbx_buf_append(out, "", 1);
    sbx_recipient_free(r);
    return err;
}

static int
generate(const char *output)
{
    sbx_identity *id = NULL;
    sbx_buf pub = SBX_BUF_INIT, text = SBX_BUF_INIT;
    char created[32];
    int rc = CLI_FAIL;
    rfc3339_now(created);
    if (sbx_identity_generate(&id) < 0 || recipient_string(&pub, id) < 0) {
        cli_error_lib("cannot generate a key");
        goto out;
    }
    const char *lines[] = {"# created: ", created, "\n# public key: ", (const char *)pub.ptr, "\n"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        if (sbx_buf_append(&text, lines[i], strlen(lines[i])) < 0)
            goto lib_error;
    }
    if (sbx_identity_to_string(id, &text) < 0 || sbx_buf_append(&text, "\n", 1) < 0)
        goto lib_error;
    if (output != NULL) {
        rc = write_new_secret_file(output, &text);
    } else if (write_all(STDOUT_FILENO, text.ptr, text.len) != 0) {
        cli_errorf("cannot write to standard output: %s", strerror(errno));
        rc = CLI_FAIL;
    } else {
        rc = CLI_OK;
    }
    if (rc == CLI_OK && (output != NULL || !isatty(STDOUT_FILENO)))
        fprintf(stderr, "Public key: %s\n", (const char *)pub.ptr);
    goto out;
lib_error:
    cli_error_lib("cannot generate a key");
out:
    sbx_identity_free(id);
    sbx_buf_dispose(&pub);
    sbx_buf_dispose(&text);
    return rc;
}

/* A record key file (one line of base64 of 32 random bytes). */
static int
generate_symmetric(const char *output)
{
    sbx_buf text = SBX_BUF_INIT;
    int rc = CLI_FAIL;
    if (sbx_record_key_generate(&text) < 0)
        cli_error_lib("cannot generate a key");
    else if (output != NULL)
        rc = write_new_secret_file(output, &text);
    else if (write_all(STDOUT_FILENO, text.ptr, text.len) != 0)
        cli_errorf("cannot write to standard output: %s", strerror(errno));
    else
        rc = CLI_OK;
    sbx_buf_dispose(&text);
    return rc;
}

static int
to_recipients(const char *input, const char *output)
{
    sbx_buf text = SBX_BUF_INIT, lines = SBX_BUF_INIT;
    sbx_identity **ids = NULL;
    sbx_sink *snk = NULL;
    size_t n = 0;
    int rc = CLI_FAIL;
    const char *name = strcmp(input, "-") == 0 ? "(standard input)" : input;
    if (cli_read_small_file(&text, input, "identity file", false) < 0)
        goto out;
    if (sbx_identities_parse(&ids, &n, (const char *)text.ptr, text.len) < 0) {
        cli_errorf("identity file %s: %s", name, sbx_error_last()->message);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (recipient_string(&lines, ids[i]) < 0) {
            cli_error_lib(name);
            goto out;
        }
        lines.ptr[lines.len - 1] = '\n'; // the NUL becomes the line end
    }
    if (cli_open_output(&snk, output, 0666) < 0)
        goto out;
    if (sbx_sink_write(snk, lines.ptr, lines.len) < 0 || sbx_sink_finish(snk) < 0) {
        cli_error_lib(NULL);
        goto out;
    }
    rc = CLI_OK;
out:
    sbx_sink_free(snk);
    sbx_identities_free(ids, n);
    sbx_buf_dispose(&text);
    sbx_buf_dispose(&lines);
    return rc;
}

int
cmd_keygen(int argc, char **argv)
{
    // `sbx keygen --sign` makes a minisign signing key pair (cli/sign.c).
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "--sign") == 0)
            return cmd_keygen_sign(argc, argv);
    }
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"symmetric", no_argument, NULL, 'S'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *output = NULL;
    bool convert = false, symmetric = false;
    int c;
    while ((c = getopt_long(argc, argv, "+:o:yh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            output = optarg;
            break;
        case 'y':
            convert = true;
            break;
        case 'S':
            symmetric = true;
            break;
        case 'h':
            cli_help_print(stdout, "keygen");
            return CLI_OK;
        default:
            return cli_bad_option("keygen", c, argv, longopts);
        }
    }
    int rest = argc - optind;
    if (cli_operands_check("keygen", argc, argv) != CLI_OK)
        return CLI_USAGE;
    if (!convert && rest > 0)
        return cli_usage_errorf("keygen", "unexpected argument '%s' (did you mean -o %s?)",
                                argv[optind], argv[optind]);
    if (convert && rest > 1)
        return cli_usage_errorf("keygen", "too many arguments: -y takes at most one FILE");
    if (convert && symmetric)
        return cli_usage_errorf("keygen", "-y and --symmetric cannot be combined");
    if (symmetric)
        return generate_symmetric(output);
    if (convert)
        return to_recipients(rest == 1 ? argv[optind] : "-", output);
    return generate(output);
}
