/*
 * cli/sign.c - sbx sign, sbx verify, sbx keygen --sign: detached signatures
 * with minisign keys (compatible with the minisign tool) or PEM keys
 * (compatible with openssl dgst -sha256 / pkeyutl -rawin).
 *
 * The key format is detected from the key file ("-----BEGIN" = PEM);
 * --pem only insists on it. minisign signatures go to FILE.minisig, PEM ones
 * (raw bytes, as openssl writes them) to FILE.sig. Flags follow minisign:
 * -s SECKEY, -p PUBKEY, -P BASE64, -m FILE, -x SIGFILE, -t/-c comments.
 */
#include "sign_cmds.h"
#include "json_out.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char usage_sign[] =
    "usage: sbx sign [-s SECKEY] [-t TRUSTED_COMMENT] [-c UNTRUSTED_COMMENT] [-x SIGFILE]\n"
    "                [--pem] [--passphrase-file F] [--json] (-m FILE | FILE)\n";

const char help_sign[] =
    "NAME\n"
    "    sbx sign - make a detached signature of a file (minisign or PEM key)\n"
    "\n"
    "SYNOPSIS\n"
    "    sbx sign [-s SECKEY] [-t COMMENT] [-c COMMENT] [-x SIGFILE] -m FILE\n"
    "    sbx sign -s key.pem [-x SIGFILE] [--passphrase-file F] -m FILE\n"
    "\n"
    "DESCRIPTION\n"
    "    With a minisign secret key (made by sbx keygen --sign or minisign -G),\n"
    "    write FILE.minisig: an Ed25519 signature of the BLAKE2b-512 hash of\n"
    "    FILE and a signed trusted comment, exactly as minisign -S does, so that\n"
    "    minisign -V verifies it. The file is streamed: any size works. The\n"
    "    default trusted comment is \"timestamp:<unix time>\\tfile:<name>\\thashed\".\n"
    "\n"
    "    With a PEM private key (RSA of at least 2048 bits, ECDSA P-256 or\n"
    "    Ed25519, detected from the file), write FILE.sig with the raw\n"
    "    signature bytes, the same as\n"
    "        openssl dgst -sha256 -sign KEY -out FILE.sig FILE      (RSA, ECDSA)\n"
    "        openssl pkeyutl -sign -rawin -inkey KEY -in FILE -out FILE.sig\n"
    "                                                              (Ed25519)\n"
    "    The digest is always SHA-256 (RSA: PKCS#1 v1.5 padding; ECDSA: DER).\n"
    "    Ed25519 signs the whole message, which is mapped into memory.\n"
    "\n"
    "    A passphrase-protected key asks for its passphrase on the terminal, or\n"
    "    reads the first line of --passphrase-file. minisign keys use scrypt\n"
    "    with 1 GiB of memory: decrypting takes a few seconds.\n"
    "\n"
    "OPTIONS\n"
    "    -s, --secret-key SECKEY    the secret key (default\n"
    "                               $MINISIGN_CONFIG_DIR/minisign.key, else\n"
    "                               ~/.minisign/minisign.key)\n"
    "    -m, --message FILE         the file to sign (or give FILE as operand)\n"
    "    -x, --signature SIGFILE    where to write the signature (default\n"
    "                               FILE.minisig, or FILE.sig for PEM keys;\n"
    "                               \"-\" = standard output)\n"
    "    -t, --trusted-comment C    minisign: the signed comment (one line)\n"
    "    -c, --comment C            minisign: the untrusted comment (one line)\n"
    "        --pem                  the key must be a PEM key\n"
    "        --passphrase-file F    the key's passphrase, first line of F\n"
    "        --json                 print the result as JSON\n"
    "    -h, --help                 show this page\n"
    "\n"
    "EXAMPLES\n"
    "    sbx sign -s minisign.key -t \"release 1.2\" -m dist.tar.gz\n"
    "    sbx sign -s rsa.pem -m report.pdf          # writes report.pdf.sig\n"
    "\n";

const char usage_verify[] =
    "usage: sbx verify [-p PUBKEY | -P BASE64] [-x SIGFILE] [-q | -Q] [--pem] [--json]\n"
    "                  (-m FILE | FILE)\n";

const char help_verify[] =
    "NAME\n"
    "    sbx verify - check a detached signature (minisign or PEM key)\n"
    "\n"
    "SYNOPSIS\n"
    "    sbx verify [-p PUBKEY | -P BASE64] [-x SIGFILE] [-q | -Q] -m FILE\n"
    "    sbx verify -p pub.pem [-x SIGFILE] -m FILE\n"
    "\n"
    "DESCRIPTION\n"
    "    With a minisign public key (a key file, or the base64 string with -P),\n"
    "    check FILE.minisig as minisign -V does: the key id, the signature of\n"
    "    the file, and the signature of the trusted comment, then print\n"
    "        Signature and comment signature verified\n"
    "        Trusted comment: <comment>\n"
    "    Prehashed signatures (minisign's default) stream the file; legacy\n"
    "    ones are accepted for files up to 1 GiB.\n"
    "\n"
    "    With a PEM public key (\"PUBLIC KEY\" or \"RSA PUBLIC KEY\"), check the\n"
    "    raw signature in FILE.sig, as openssl dgst -sha256 -verify (RSA,\n"
    "    ECDSA P-256) or openssl pkeyutl -verify -rawin (Ed25519) would.\n"
    "\n"
    "    Nothing but a return status of 0 means the signature is valid: a\n"
    "    changed file, a changed trusted comment, another key or a damaged\n"
    "    signature all fail with status 1 and a message saying which.\n"
    "\n"
    "OPTIONS\n"
    "    -p, --public-key PUBKEY    the public key file (default ./minisign.pub)\n"
    "    -P, --public-key-string K  a minisign public key as base64 (RW...)\n"
    "    -m, --message FILE         the signed file (or give FILE as operand)\n"
    "    -x, --signature SIGFILE    the signature (default FILE.minisig, or\n"
    "                               FILE.sig for PEM keys)\n"
    "    -q, --quiet                print nothing; only the status tells\n"
    "    -Q                         print only the trusted comment\n"
    "        --pem                  the key must be a PEM key\n"
    "        --json                 print the result as JSON (also on failure)\n"
    "    -h, --help                 show this page\n"
    "\n"
    "EXAMPLES\n"
    "    sbx verify -p minisign.pub -m dist.tar.gz\n"
    "    sbx verify -P RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3 -m f\n"
    "    sbx verify -p rsa.pub.pem -m report.pdf\n"
    "\n";

const char usage_keygen_sign[] =
    "usage: sbx keygen --sign [-p PUBKEY_FILE] [-s SECKEY_FILE] [-W] [-f]\n"
    "                  [--passphrase-file F] [--json]\n";

const char help_keygen_sign[] =
    "NAME\n"
    "    sbx keygen --sign - make a minisign signing key pair\n"
    "\n"
    "SYNOPSIS\n"
    "    sbx keygen --sign [-p PUBKEY_FILE] [-s SECKEY_FILE] [-W] [-f]\n"
    "\n"
    "DESCRIPTION\n"
    "    Generate an Ed25519 key pair in minisign's format: the public key\n"
    "    file (default ./minisign.pub) and the secret key file (default\n"
    "    $MINISIGN_CONFIG_DIR/minisign.key or ~/.minisign/minisign.key),\n"
    "    created with mode 0600 when it is opened. The secret key is protected\n"
    "    by a passphrase (asked twice on the terminal, or --passphrase-file)\n"
    "    with scrypt as minisign does; -W leaves it unprotected, as\n"
    "    minisign -G -W. Existing files are not replaced unless -f is given.\n"
    "\n"
    "    Keys, protected or not, public keys and signatures work with\n"
    "    minisign in both directions (a protected key carries minisign's\n"
    "    BLAKE2b-256 checksum).\n"
    "\n"
    "OPTIONS\n"
    "    -p, --public-key FILE      where to write the public key\n"
    "    -s, --secret-key FILE      where to write the secret key\n"
    "    -W, --no-passphrase        do not protect the secret key\n"
    "    -f, --force                replace existing key files\n"
    "        --passphrase-file F    the new passphrase, first line of F\n"
    "        --json                 print the result as JSON\n"
    "    -h, --help                 show this page\n"
    "\n"
    "EXAMPLES\n"
    "    sbx keygen --sign -p release.pub -s release.key\n"
    "    sbx keygen --sign -W -p ci.pub -s ci.key\n"
    "\n";

enum { OPT_PEM = 256, OPT_PASSFILE, OPT_JSON, OPT_SIGN };

/* ---- output helpers ---- */

static int
usage_error(const char *command, const char *usage, const char *msg)
{
    cli_errorf("%s", msg);
    fputs(usage, stderr);
    fprintf(stderr, "Run 'sbx help %s' for the manual.\n", command);
    return CLI_USAGE;
}

/* Open the --json object: {"method":METHOD, then the caller's members. */
static void
json_begin(cli_json *j, const char *method)
{
    cli_json_init(j, stdout, CLI_JSON_COMPACT);
    cli_json_object_begin(j, NULL);
    cli_json_string(j, "method", method);
}

static void
keyid_hex(char out[17], uint64_t id)
{
    snprintf(out, 17, "%016" PRIX64, id);
}

/* ---- files and keys ---- */

/* $MINISIGN_CONFIG_DIR/minisign.key or ~/.minisign/minisign.key (malloc'd), or NULL. */
static char *
default_seckey_path(bool create_dir)
{
    const char *dir = getenv("MINISIGN_CONFIG_DIR");
    const char *home = getenv("HOME");
    char *path = NULL;
    if (dir != NULL && *dir != '\0') {
        if (asprintf(&path, "%s/minisign.key", dir) < 0)
            return NULL;
    } else if (home != NULL && *home != '\0') {
        char *d = NULL;
        if (asprintf(&d, "%s/.minisign", home) < 0)
            return NULL;
        if (create_dir && mkdir(d, 0700) != 0 && errno != EEXIST)
            cli_warnf("cannot create %s: %s", d, strerror(errno));
        if (asprintf(&path, "%s/minisign.key", d) < 0)
            path = NULL;
        free(d);
    } else {
        path = strdup("minisign.key");
    }
    return path;
}

/* True when both paths name one existing file (so writing one would destroy the other). */
static bool
same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (strcmp(a, "-") == 0 || strcmp(b, "-") == 0)
        return false;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && S_ISREG(sa.st_mode) &&
           sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* The file a write to path would land in: its directory resolved, then its name (malloc'd). */
static char *
write_target(const char *path)
{
    char *d = strdup(path), *b = strdup(path), *dir = NULL, *out = realpath(path, NULL);
    if (out == NULL && d != NULL && b != NULL && (dir = realpath(dirname(d), NULL)) != NULL &&
        asprintf(&out, "%s/%s", dir, basename(b)) < 0)
        out = NULL;
    free(d);
    free(b);
    free(dir);
    return out;
}

/* True when writing a and b would write one file ("./k" and "k", or links to one file). */
static bool
same_target(const char *a, const char *b)
{
    if (strcmp(a, b) == 0 || same_file(a, b))
        return true;
    char *ta = write_target(a), *tb = write_target(b);
    bool same = ta != NULL && tb != NULL && strcmp(ta, tb) == 0;
    free(ta);
    free(tb);
    return same;
}

static char *
with_suffix(const char *file, const char *suffix)
{
    char *s = NULL;
    if (asprintf(&s, "%s%s", file, suffix) < 0)
        return NULL;
    return s;
}

struct pass_ctx {
    const char *file;
    bool announce; // say that scrypt is running (minisign keys take seconds)
};

static int
ask_passphrase(sbx_buf *out, void *payload)
{
    struct pass_ctx *p = payload;
    char why[256];
    int err = cli_read_passphrase(out, p->file, false, why, sizeof(why));
    if (err < 0)
        cli_errorf("%s", why);
    else if (p->announce && isatty(STDERR_FILENO))
        fputs("Deriving a key from the passphrase and decrypting the secret key...\n", stderr);
    return err;
}

/*
 * A regular file read whole into memory (len 0: ptr is ""), for pure Ed25519,
 * which needs the message in one piece. Read, not mapped: a file shrinking
 * under a mapping would kill the process with SIGBUS.
 */
struct mapped {
    const uint8_t *ptr;
    size_t len;
    bool mapped; /* ptr is ours to free */
};

/* 1 = read; 0 = not a regular file (use a stream); < 0 = error (printed). */
static int
map_file(struct mapped *m, const char *path)
{
    struct stat st;
    m->ptr = (const uint8_t *)"";
    m->len = 0;
    m->mapped = false;
    if (strcmp(path, "-") == 0)
        return 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cli_errorf("cannot open %s: %s", path, strerror(errno));
        return SBX_EIO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return 0;
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1); // + 1: a byte more means the file grew
    size_t len = 0;
    ssize_t r = 0;
    while (
        buf != NULL && len <= (size_t)st.st_size &&
        ((r = read(fd, buf + len, (size_t)st.st_size + 1 - len)) > 0 || (r < 0 && errno == EINTR)))
        len += r > 0 ? (size_t)r : 0;
    int saved = errno;
    close(fd);
    if (buf == NULL || r < 0 || len != (size_t)st.st_size) {
        if (buf == NULL)
            cli_errorf("%s does not fit in memory", path);
        else if (r < 0)
            cli_errorf("cannot read %s: %s", path, strerror(saved));
        else
            cli_errorf("%s changed size while it was read; sign it when nothing writes to it",
                       path);
        free(buf);
        return SBX_EIO;
    }
    m->ptr = buf;
    m->len = len;
    m->mapped = true;
    return 1;
}

static void
unmap_file(struct mapped *m)
{
    if (m->mapped)
        free((void *)m->ptr);
    m->mapped = false;
}

static int
open_message(sbx_source **src, const char *path)
{
    int err = sbx_source_file_new(src, path);
    if (err < 0)
        cli_error_lib(NULL);
    return err;
}

static int
write_output(const char *path, const sbx_buf *data, unsigned mode)
{
    sbx_sink *out = NULL;
    int err = cli_open_output(&out, path, mode);
    if (err < 0)
        return err;
    if ((err = sbx_sink_write(out, data->ptr, data->len)) < 0 || (err = sbx_sink_finish(out)) < 0)
        cli_error_lib(path);
    sbx_sink_free(out);
    return err;
}

/* ---- sbx sign ---- */

struct sign_args {
    const char *seckey, *message, *sigfile, *tc, *uc, *passfile;
    bool pem, json;
};

static int
sign_pem(const struct sign_args *a, const sbx_buf *keytext, const char *sigfile)
{
    struct pass_ctx pc = {a->passfile, false};
    sbx_pem_key *key = NULL;
    sbx_source *src = NULL;
    sbx_buf sig = SBX_BUF_INIT;
    struct mapped m;
    int err, rc = CLI_FAIL;
    if (a->tc != NULL || a->uc != NULL) {
        rc = usage_error("sign", usage_sign, "-t and -c apply to minisign keys, not PEM keys");
        goto out;
    }
    if ((err = sbx_pem_key_parse_private(&key, (const char *)keytext->ptr, keytext->len,
                                         ask_passphrase, &pc)) < 0) {
        if (err != SBX_ECANCELED)
            cli_error_lib(a->seckey);
        goto out;
    }
    bool ed = strcmp(sbx_pem_key_type(key), "Ed25519") == 0;
    if (ed && (err = map_file(&m, a->message)) != 0) {
        if (err < 0)
            goto out;
        err = sbx_pem_sign_mem(&sig, key, m.ptr, m.len);
        unmap_file(&m);
    } else {
        if (open_message(&src, a->message) < 0)
            goto out;
        err = sbx_pem_sign(&sig, key, src);
    }
    if (err < 0) {
        cli_error_lib(a->message);
        goto out;
    }
    if (write_output(sigfile, &sig, 0644) < 0)
        goto out;
    if (a->json) {
        cli_json j;
        json_begin(&j, "sign");
        cli_json_string(&j, "status", "good");
        cli_json_string(&j, "format", "pem");
        cli_json_string(&j, "key_type", sbx_pem_key_type(key));
        cli_json_string(&j, "digest", ed ? "none (pure Ed25519)" : "SHA-256");
        cli_json_string(&j, "file", a->message);
        cli_json_string(&j, "signature_file", sigfile);
        cli_json_object_end(&j);
    } else if (strcmp(sigfile, "-") != 0) {
        printf("signed %s with %s key %s%s: %s\n", a->message, sbx_pem_key_type(key), a->seckey,
               ed ? "" : " (SHA-256)", sigfile);
    }
    rc = CLI_OK;
out:
    sbx_source_free(src);
    sbx_pem_key_free(key);
    sbx_buf_dispose(&sig);
    return rc;
}

static int
sign_minisign(const struct sign_args *a, const sbx_buf *keytext, const char *sigfile)
{
    struct pass_ctx pc = {a->passfile, true};
    sbx_minisign_seckey *sk = NULL;
    sbx_source *src = NULL;
    sbx_buf sig = SBX_BUF_INIT;
    char *base = strdup(a->message), id[17];
    sbx_minisign_sign_options opts = SBX_MINISIGN_SIGN_OPTIONS_INIT;
    int err, rc = CLI_FAIL;
    if (base == NULL) {
        cli_errorf("out of memory");
        goto out;
    }
    if ((err = sbx_minisign_seckey_parse(&sk, (const char *)keytext->ptr, keytext->len,
                                         ask_passphrase, &pc)) < 0) {
        if (err != SBX_ECANCELED)
            cli_error_lib(a->seckey);
        goto out;
    }
    opts.trusted_comment = a->tc;
    opts.untrusted_comment = a->uc;
    opts.file_name = strcmp(a->message, "-") == 0 ? NULL : basename(base);
    if (open_message(&src, a->message) < 0)
        goto out;
    if (sbx_minisign_sign(&sig, sk, src, &opts) < 0) {
        cli_error_lib(a->message);
        goto out;
    }
    if (write_output(sigfile, &sig, 0644) < 0)
        goto out;
    keyid_hex(id, sbx_minisign_seckey_keyid(sk));
    if (a->json && sbx_buf_append(&sig, "", 1) == 0) {
        // The trusted comment is the third line of what we wrote (now NUL-terminated).
        char *tc = strstr((char *)sig.ptr, "\ntrusted comment: ");
        char *end = tc != NULL ? strchr(tc + 1, '\n') : NULL;
        if (end != NULL)
            *end = '\0';
        cli_json j;
        json_begin(&j, "sign");
        cli_json_string(&j, "status", "good");
        cli_json_string(&j, "format", "minisign");
        cli_json_string(&j, "key_id", id);
        cli_json_string(&j, "file", a->message);
        cli_json_string(&j, "signature_file", sigfile);
        cli_json_string(&j, "trusted_comment", tc ? tc + strlen("\ntrusted comment: ") : "");
        cli_json_object_end(&j);
    } else if (strcmp(sigfile, "-") != 0) {
        printf("signed %s with minisign key %s: %s\n", a->message, id, sigfile);
    }
    rc = CLI_OK;
out:
    free(base);
    sbx_source_free(src);
    sbx_minisign_seckey_free(sk);
    sbx_buf_dispose(&sig);
    return rc;
}

int
cmd_sign(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"secret-key", required_argument, NULL, 's'},
        {"message", required_argument, NULL, 'm'},
        {"signature", required_argument, NULL, 'x'},
        {"trusted-comment", required_argument, NULL, 't'},
        {"comment", required_argument, NULL, 'c'},
        {"pem", no_argument, NULL, OPT_PEM},
        {"passphrase-file", required_argument, NULL, OPT_PASSFILE},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct sign_args a = {0};
    char *default_key = NULL, *default_sig = NULL;
    sbx_buf keytext = SBX_BUF_INIT;
    int c, rc = CLI_FAIL;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:s:m:x:t:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            a.seckey = optarg;
            break;
        case 'm':
            a.message = optarg;
            break;
        case 'x':
            a.sigfile = optarg;
            break;
        case 't':
            a.tc = optarg;
            break;
        case 'c':
            a.uc = optarg;
            break;
        case OPT_PEM:
            a.pem = true;
            break;
        case OPT_PASSFILE:
            a.passfile = optarg;
            break;
        case OPT_JSON:
            a.json = true;
            break;
        case 'h':
            cli_help_print(stdout, "sign");
            return CLI_OK;
        default:
            return cli_bad_option("sign", c, argv, longopts);
        }
    }
    if (cli_operands_check("sign", argc, argv) != CLI_OK)
        return CLI_USAGE;
    if (a.message == NULL && optind < argc)
        a.message = argv[optind++];
    if (optind < argc)
        return usage_error("sign", usage_sign, "too many arguments (sign one file at a time)");
    if (a.message == NULL)
        return usage_error("sign", usage_sign, "no file to sign: give -m FILE");
    if (a.seckey == NULL && (a.seckey = default_key = default_seckey_path(false)) == NULL) {
        cli_errorf("out of memory");
        return CLI_FAIL;
    }
    if (cli_read_small_file(&keytext, a.seckey, "secret key file", true) < 0)
        goto out;
    bool pem = sbx_pem_text_is_pem((const char *)keytext.ptr, keytext.len);
    if (a.pem && !pem) {
        cli_errorf("%s is not a PEM key (--pem was given)", a.seckey);
        goto out;
    }
    if (a.sigfile == NULL && strcmp(a.message, "-") == 0) {
        rc = usage_error("sign", usage_sign, "signing standard input needs -x SIGFILE");
        goto out;
    }
    if (a.sigfile == NULL &&
        (a.sigfile = default_sig = with_suffix(a.message, pem ? ".sig" : ".minisig")) == NULL) {
        cli_errorf("out of memory");
        goto out;
    }
    if (same_file(a.sigfile, a.message) || same_file(a.sigfile, a.seckey)) {
        rc = usage_error("sign", usage_sign,
                         "the signature file would replace the file being signed or the key");
        goto out;
    }
    rc = pem ? sign_pem(&a, &keytext, a.sigfile) : sign_minisign(&a, &keytext, a.sigfile);
out:
    sbx_buf_dispose(&keytext);
    free(default_key);
    free(default_sig);
    return rc;
}

/* ---- sbx verify ---- */

struct verify_args {
    const char *pubkey, *pubstr, *message, *sigfile;
    bool pem, json;
    int quiet; // 0, 1 (-q), 2 (-Q)
};

static int
verify_failed(const struct verify_args *a, const char *sigfile, const char *format)
{
    const sbx_error *e = sbx_error_last();
    if (a->json) {
        cli_json j;
        json_begin(&j, "verify");
        cli_json_bool(&j, "verified", false);
        cli_json_string(&j, "format", format);
        cli_json_string(&j, "file", a->message);
        cli_json_string(&j, "signature_file", sigfile);
        cli_json_string(&j, "code", sbx_error_name(e->code));
        cli_json_string(&j, "error", e->message);
        cli_json_object_end(&j);
    }
    if (a->quiet == 0 || a->json)
        cli_errorf("%s", e->message);
    return CLI_FAIL;
}

static int
verify_pem(const struct verify_args *a, const sbx_buf *keytext, const char *sigfile)
{
    sbx_pem_key *key = NULL;
    sbx_source *src = NULL;
    sbx_buf sig = SBX_BUF_INIT;
    struct mapped m;
    int err, rc = CLI_FAIL;
    if ((err = sbx_pem_key_parse_public(&key, (const char *)keytext->ptr, keytext->len)) < 0) {
        cli_error_lib(a->pubkey);
        goto out;
    }
    if (cli_read_small_file(&sig, sigfile, "signature file", false) < 0)
        goto out;
    if (strcmp(sbx_pem_key_type(key), "Ed25519") == 0 && (err = map_file(&m, a->message)) != 0) {
        if (err < 0)
            goto out;
        err = sbx_pem_verify_mem(key, m.ptr, m.len, sig.ptr, sig.len);
        unmap_file(&m);
    } else {
        if (open_message(&src, a->message) < 0)
            goto out;
        err = sbx_pem_verify(key, src, sig.ptr, sig.len);
    }
    if (err != 0) {
        rc = verify_failed(a, sigfile, "pem");
        goto out;
    }
    if (a->json) {
        cli_json j;
        json_begin(&j, "verify");
        cli_json_bool(&j, "verified", true);
        cli_json_string(&j, "format", "pem");
        cli_json_string(&j, "key_type", sbx_pem_key_type(key));
        cli_json_string(&j, "file", a->message);
        cli_json_string(&j, "signature_file", sigfile);
        cli_json_object_end(&j);
    } else if (a->quiet == 0) {
        printf("Signature verified (%s)\n", sbx_pem_key_type(key));
    }
    rc = CLI_OK;
out:
    sbx_source_free(src);
    sbx_pem_key_free(key);
    sbx_buf_dispose(&sig);
    return rc;
}

static int
verify_minisign(const struct verify_args *a, sbx_minisign_pubkey *pk, const char *sigfile)
{
    sbx_source *src = NULL;
    sbx_buf sig = SBX_BUF_INIT, tc = SBX_BUF_INIT;
    char id[17];
    int rc = CLI_FAIL;
    if (cli_read_small_file(&sig, sigfile, "signature file", false) < 0)
        goto out;
    if (open_message(&src, a->message) < 0)
        goto out;
    if (sbx_minisign_verify(pk, src, (const char *)sig.ptr, sig.len, &tc) != 0) {
        rc = verify_failed(a, sigfile, "minisign");
        goto out;
    }
    keyid_hex(id, sbx_minisign_pubkey_keyid(pk));
    const char *comment = tc.ptr ? (const char *)tc.ptr : "";
    if (a->json) {
        cli_json j;
        json_begin(&j, "verify");
        cli_json_bool(&j, "verified", true);
        cli_json_string(&j, "format", "minisign");
        cli_json_string(&j, "key_id", id);
        cli_json_string(&j, "file", a->message);
        cli_json_string(&j, "signature_file", sigfile);
        cli_json_string(&j, "trusted_comment", comment);
        cli_json_object_end(&j);
    } else if (a->quiet == 0) {
        printf("Signature and comment signature verified\nTrusted comment: %s\n", comment);
    } else if (a->quiet == 2) {
        printf("%s\n", comment);
    }
    rc = CLI_OK;
out:
    sbx_source_free(src);
    sbx_buf_dispose(&sig);
    sbx_buf_dispose(&tc);
    return rc;
}

static int
verify_run(struct verify_args *a)
{
    sbx_buf keytext = SBX_BUF_INIT;
    sbx_minisign_pubkey *pk = NULL;
    char *default_sig = NULL;
    bool pem = false;
    int rc = CLI_FAIL;
    if (a->pubstr != NULL) {
        if (sbx_minisign_pubkey_parse(&pk, a->pubstr, strlen(a->pubstr)) < 0) {
            cli_error_lib("-P");
            goto out;
        }
    } else {
        if (cli_read_small_file(&keytext, a->pubkey, "public key file", false) < 0)
            goto out;
        pem = sbx_pem_text_is_pem((const char *)keytext.ptr, keytext.len);
        if (a->pem && !pem) {
            cli_errorf("%s is not a PEM key (--pem was given)", a->pubkey);
            goto out;
        }
        if (!pem && sbx_minisign_pubkey_parse(&pk, (const char *)keytext.ptr, keytext.len) < 0) {
            cli_error_lib(a->pubkey);
            goto out;
        }
    }
    const char *sigfile = a->sigfile;
    if (sigfile == NULL &&
        (sigfile = default_sig = with_suffix(a->message, pem ? ".sig" : ".minisig")) == NULL) {
        cli_errorf("out of memory");
        goto out;
    }
    rc = pem ? verify_pem(a, &keytext, sigfile) : verify_minisign(a, pk, sigfile);
out:
    sbx_minisign_pubkey_free(pk);
    sbx_buf_dispose(&keytext);
    free(default_sig);
    return rc;
}

int
cmd_verify(int argc, char **argv)
{
    static const struct option longopts[] = {{"public-key", required_argument, NULL, 'p'},
                                             {"public-key-string", required_argument, NULL, 'P'},
                                             {"message", required_argument, NULL, 'm'},
                                             {"signature", required_argument, NULL, 'x'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"pem", no_argument, NULL, OPT_PEM},
                                             {"json", no_argument, NULL, OPT_JSON},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    struct verify_args a = {0};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:p:P:m:x:qQh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            a.pubkey = optarg;
            break;
        case 'P':
            a.pubstr = optarg;
            break;
        case 'm':
            a.message = optarg;
            break;
        case 'x':
            a.sigfile = optarg;
            break;
        case 'q':
            a.quiet = 1;
            break;
        case 'Q':
            a.quiet = 2;
            break;
        case OPT_PEM:
            a.pem = true;
            break;
        case OPT_JSON:
            a.json = true;
            break;
        case 'h':
            cli_help_print(stdout, "verify");
            return CLI_OK;
        default:
            return cli_bad_option("verify", c, argv, longopts);
        }
    }
    if (cli_operands_check("verify", argc, argv) != CLI_OK)
        return CLI_USAGE;
    if (a.message == NULL && optind < argc)
        a.message = argv[optind++];
    if (optind < argc)
        return usage_error("verify", usage_verify, "too many arguments");
    if (a.message == NULL)
        return usage_error("verify", usage_verify, "no file to verify: give -m FILE");
    if (a.pubkey != NULL && a.pubstr != NULL)
        return usage_error("verify", usage_verify, "give the public key once: -p or -P");
    if (a.pubstr != NULL && a.pem)
        return usage_error("verify", usage_verify, "-P takes a minisign key; use -p for PEM");
    if (a.sigfile == NULL && strcmp(a.message, "-") == 0)
        return usage_error("verify", usage_verify, "verifying standard input needs -x SIGFILE");
    if (a.pubkey == NULL && a.pubstr == NULL)
        a.pubkey = "minisign.pub";
    return verify_run(&a);
}

/* ---- sbx keygen --sign ---- */

struct keygen_args {
    const char *pubfile, *secfile, *passfile;
    bool nopass, force, json;
};

static bool
exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static int
keygen_write(const struct keygen_args *a, const sbx_minisign_seckey *sk, const sbx_buf *pass)
{
    sbx_minisign_pubkey *pk = NULL;
    sbx_buf sktext = SBX_BUF_INIT, pktext = SBX_BUF_INIT;
    char id[17];
    int rc = CLI_FAIL;
    if (!a->nopass && isatty(STDERR_FILENO))
        fputs("Deriving a key from the passphrase to encrypt the secret key...\n", stderr);
    if (sbx_minisign_seckey_to_file(sk, &sktext, a->nopass ? NULL : pass->ptr,
                                    a->nopass ? 0 : pass->len, 0, 0) < 0 ||
        sbx_minisign_seckey_public(&pk, sk) < 0 || sbx_minisign_pubkey_to_file(pk, &pktext) < 0) {
        cli_error_lib(NULL);
        goto out;
    }
    if (sbx_atomic_write_file(a->secfile, sktext.ptr, sktext.len, 0600) < 0 ||
        sbx_atomic_write_file(a->pubfile, pktext.ptr, pktext.len, 0644) < 0) {
        cli_error_lib(NULL);
        goto out;
    }
    keyid_hex(id, sbx_minisign_pubkey_keyid(pk));
    bool compat = a->nopass || sbx_minisign_checksum_supported();
    if (a->json) {
        cli_json j;
        json_begin(&j, "keygen");
        cli_json_string(&j, "status", "good");
        cli_json_string(&j, "type", "minisign");
        cli_json_string(&j, "key_id", id);
        cli_json_string(&j, "public_key", sbx_minisign_pubkey_base64(pk));
        cli_json_string(&j, "public_key_file", a->pubfile);
        cli_json_string(&j, "secret_key_file", a->secfile);
        cli_json_bool(&j, "protected", !a->nopass);
        cli_json_bool(&j, "minisign_can_use_secret_key", compat);
        cli_json_object_end(&j);
    } else {
        printf("The secret key was saved as %s - Keep it secret!\n"
               "The public key was saved as %s - That one can be public.\n\n"
               "Files signed using this key pair can be verified with the following command:\n\n"
               "sbx verify -m <file> -P %s\n",
               a->secfile, a->pubfile, sbx_minisign_pubkey_base64(pk));
    }
    rc = CLI_OK;
out:
    sbx_minisign_pubkey_free(pk);
    sbx_buf_dispose(&sktext);
    sbx_buf_dispose(&pktext);
    return rc;
}

static int
keygen_run(struct keygen_args *a)
{
    sbx_minisign_seckey *sk = NULL;
    sbx_buf pass = SBX_BUF_INIT;
    char *default_sec = NULL;
    int rc = CLI_FAIL;
    if (a->secfile == NULL && (a->secfile = default_sec = default_seckey_path(true)) == NULL) {
        cli_errorf("out of memory");
        return CLI_FAIL;
    }
    if (a->pubfile == NULL)
        a->pubfile = "minisign.pub";
    if (same_target(a->secfile, a->pubfile)) {
        rc = usage_error("keygen", usage_keygen_sign, "-p and -s name the same file");
        goto out;
    }
    if (!a->force && (exists(a->secfile) || exists(a->pubfile))) {
        cli_errorf("%s already exists; refusing to replace a key file",
                   exists(a->secfile) ? a->secfile : a->pubfile);
        cli_hintf("choose other names, or add -f if the old key pair is no longer needed");
        goto out;
    }
    if (!a->nopass) {
        char why[256];
        if (cli_read_passphrase(&pass, a->passfile, true, why, sizeof(why)) < 0) {
            cli_errorf("%s", why);
            cli_hintf("use -W for a secret key without a passphrase");
            goto out;
        }
    }
    if (sbx_minisign_seckey_generate(&sk) < 0) {
        cli_error_lib(NULL);
        goto out;
    }
    rc = keygen_write(a, sk, &pass);
out:
    sbx_minisign_seckey_free(sk);
    sbx_buf_dispose(&pass);
    free(default_sec);
    return rc;
}

int
cmd_keygen_sign(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"sign", no_argument, NULL, OPT_SIGN},
        {"public-key", required_argument, NULL, 'p'},
        {"secret-key", required_argument, NULL, 's'},
        {"no-passphrase", no_argument, NULL, 'W'},
        {"force", no_argument, NULL, 'f'},
        {"passphrase-file", required_argument, NULL, OPT_PASSFILE},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct keygen_args a = {0};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "+:p:s:Wfh", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_SIGN:
            break;
        case 'p':
            a.pubfile = optarg;
            break;
        case 's':
            a.secfile = optarg;
            break;
        case 'W':
            a.nopass = true;
            break;
        case 'f':
            a.force = true;
            break;
        case OPT_PASSFILE:
            a.passfile = optarg;
            break;
        case OPT_JSON:
            a.json = true;
            break;
        case 'h':
            cli_help_print(stdout, "keygen-sign");
            return CLI_OK;
        default:
            return cli_bad_option("keygen", c, argv, longopts);
        }
    }
    if (cli_operands_check("keygen", argc, argv) != CLI_OK)
        return CLI_USAGE;
    if (optind < argc)
        return usage_error("keygen", usage_keygen_sign, "unexpected argument");
    if (a.nopass && a.passfile != NULL)
        return usage_error("keygen", usage_keygen_sign, "-W and --passphrase-file conflict");
    return keygen_run(&a);
}
