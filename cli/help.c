/*
 * cli/help.c - the manual pages of sbx (sbx help COMMAND, sbx COMMAND --help).
 */
#include "cli.h"
#include "fileops_cmds.h"
#include "destroy_seal_cmds.h"
#include "sign_cmds.h"

#include <getopt.h>
#include <string.h>

/*
 * The overview (sbx help, sbx --help) is not a fixed text: its SYNOPSIS is the
 * usage lines of every command of cli_commands (main.c), and its COMMANDS
 * the summary on each page's NAME line, so a new command appears in both.
 */
static const char overview_usage[] = "usage: sbx COMMAND [OPTIONS] [ARGS]\n"
                                     "       sbx help [COMMAND] | sbx --version\n";

static const char overview_name[] = "NAME\n"
                                    "    sbx - protect files with age v1 encryption\n"
                                    "\n";

static const char overview_description[] =
    "DESCRIPTION\n"
    "    sbx encrypts and decrypts files in the age v1 format: files it writes\n"
    "    decrypt with age(1), and files age writes decrypt with sbx. Keys are\n"
    "    X25519 key pairs (public \"age1...\", secret \"AGE-SECRET-KEY-1...\"),\n"
    "    SSH keys (ssh-ed25519, ssh-rsa) or passphrases. Data streams in\n"
    "    constant memory, from files or pipes.\n"
    "\n";

static const char overview_end[] =
    "\n"
    "    Options come before operands (POSIX): sbx encrypt -r KEY FILE.\n"
    "    \"sbx COMMAND --help\" is the same as \"sbx help COMMAND\".\n"
    "\n"
    "EXAMPLES\n"
    "    sbx keygen -o key.txt\n"
    "    sbx encrypt -r \"$(sbx keygen -y key.txt)\" -o data.csv.age data.csv\n"
    "    sbx decrypt -i key.txt -o data.csv data.csv.age\n"
    "\n";

/* The usage lines of a page without "usage: " and its alignment, indented as a SYNOPSIS. */
static void
synopsis_lines(FILE *f, const char *usage)
{
    static const char prefix[] = "usage: ";
    const size_t skip = sizeof(prefix) - 1;
    while (*usage != '\0') {
        size_t len = strcspn(usage, "\n");
        size_t cut =
            len >= skip && (strncmp(usage, prefix, skip) == 0 || strspn(usage, " ") >= skip) ? skip
                                                                                             : 0;
        fprintf(f, "    %.*s\n", (int)(len - cut), usage + cut);
        usage += len + (usage[len] == '\n');
    }
}

/* "keygen" -> "make an X25519 key pair, ..." from the page's "    sbx keygen - ..." line. */
static void
summary_line(FILE *f, const char *name)
{
    const struct cli_page *p = cli_page_find(name);
    const char *line = p != NULL ? strchr(p->text, '\n') : NULL;
    const char *dash = line != NULL ? strstr(line, " - ") : NULL;
    if (dash == NULL) {
        fprintf(f, "    %s\n", name);
        return;
    }
    fprintf(f, "    %-9s %.*s\n", name, (int)strcspn(dash + 3, "\n"), dash + 3);
}

void
cli_overview_print(FILE *f)
{
    fputs(overview_name, f);
    fputs("SYNOPSIS\n", f);
    for (size_t i = 0; i < cli_ncommands; i++) {
        const struct cli_page *p = cli_page_find(cli_commands[i].name);
        if (p != NULL)
            synopsis_lines(f, p->usage);
    }
    fputs("    sbx --version\n\n", f);
    fputs(overview_description, f);
    fputs("COMMANDS\n", f);
    for (size_t i = 0; i < cli_ncommands; i++)
        summary_line(f, cli_commands[i].name);
    fputs(overview_end, f);
    cli_exit_status_print(f);
}

static bool
is_command(const char *name)
{
    for (size_t i = 0; i < cli_ncommands; i++) {
        if (strcmp(cli_commands[i].name, name) == 0)
            return true;
    }
    return false;
}

/* "commands: keygen, encrypt, ..." wrapped before column 80, then the other pages. */
static void
command_list(FILE *f)
{
    const char *lead = "commands: ";
    size_t col = strlen(lead);
    fputs(lead, f);
    for (size_t i = 0; i < cli_ncommands; i++) {
        size_t len = strlen(cli_commands[i].name) + (i + 1 < cli_ncommands ? 1 : 0);
        if (i > 0 && col + 1 + len > 79) {
            fprintf(f, "\n%*s", (int)strlen(lead), "");
            col = strlen(lead);
        } else if (i > 0) {
            fputc(' ', f);
            col++;
        }
        fprintf(f, "%s%s", cli_commands[i].name, i + 1 < cli_ncommands ? "," : "");
        col += len;
    }
    fputc('\n', f);
    for (size_t i = 0; i < cli_npages; i++) {
        if (!is_command(cli_pages[i].name))
            fprintf(f, "also a manual page: %s\n", cli_pages[i].name);
    }
}

int
cli_overview_usage(void)
{
    fputs(overview_usage, stderr);
    command_list(stderr);
    fputs("Run 'sbx help' for the manual, 'sbx help COMMAND' for a command's.\n", stderr);
    return CLI_USAGE;
}

/* The pages of sbx, found by cli/manual.c (the overview is printed by cli_overview_print). */
const struct cli_page cli_pages[] = {
    {"keygen",
     "usage: sbx keygen [-o FILE]\n"
     "       sbx keygen -y [-o FILE] [FILE]\n"
     "       sbx keygen --symmetric [-o FILE]\n"
     "       sbx keygen --sign [-p PUB] [-s SEC] [-W]   (see sbx help keygen-sign)\n",
     "NAME\n"
     "    sbx keygen - make an X25519 key pair, or print a key file's public key\n"
     "\n"
     "SYNOPSIS\n"
     "    sbx keygen [-o FILE]\n"
     "    sbx keygen -y [-o FILE] [FILE]\n"
     "    sbx keygen --symmetric [-o FILE]\n"
     "    sbx keygen --sign [-p PUB] [-s SEC] [-W]   (signing keys: sbx help keygen-sign)\n"
     "\n"
     "DESCRIPTION\n"
     "    Without -y, generate a new identity and write it in the layout of\n"
     "    age-keygen(1):\n"
     "\n"
     "        # created: 2025-01-31T12:00:00+01:00\n"
     "        # public key: age1...\n"
     "        AGE-SECRET-KEY-1...\n"
     "\n"
     "    With -o, the file is created with mode 0600 when it is opened (it is\n"
     "    never readable by others, not even for a moment) and an existing file\n"
     "    is never overwritten. The public key is also printed on standard error\n"
     "    (\"Public key: age1...\") when the key goes to a file or a pipe.\n"
     "\n"
     "    With -y, read an identity file (FILE, or standard input when FILE is\n"
     "    absent or \"-\") and print the recipient (public key) of each identity in\n"
     "    it, one per line: the same output as age-keygen -y. Give these to\n"
     "    people who encrypt to you; keep the identity file secret.\n"
     "\n"
     "    With --symmetric, make a record key instead: 32 random bytes as one\n"
     "    line of base64, for encrypted database values (the SQLite extension\n"
     "    sbx_sqlite.so: sbx_encrypt(value, 'file:FILE', context); see\n"
     "    docs/records.md). Keep it 0600: it is refused if group or others may\n"
     "    read or write it. Anyone holding it can decrypt every value.\n"
     "\n"
     "    sbx keygen makes only age X25519 keys. SSH and PEM keys are made with\n"
     "    ssh-keygen(1) and openssl(1); sbx encrypt -r/-R and sbx decrypt -i use\n"
     "    them directly, and -y prints the public key of such a private key file.\n"
     "\n"
     "OPTIONS\n"
     "    -o, --output FILE   write to FILE instead of standard output; without -y,\n"
     "                        FILE must not exist yet\n"
     "    -y                  convert an identity file to its recipients\n"
     "    --symmetric         make a 32-byte record key (base64) instead of a key pair\n"
     "    -h, --help          show this page\n"
     "\n"
     "EXAMPLES\n"
     "    sbx keygen -o key.txt              # Public key: age1... on stderr\n"
     "    sbx keygen -y key.txt              # age1...\n"
     "    sbx keygen | tee key.txt | sbx keygen -y\n"
     "    sbx keygen --symmetric -o records.key\n"
     "\n"},
    {"encrypt",
     "usage: sbx encrypt (-r RECIPIENT | -R FILE | -i FILE | --kms URL)... [-a] [-o OUTPUT]\n"
     "                   [INPUT]\n"
     "       sbx encrypt (-p | --passphrase-file FILE) [-a] [-o OUTPUT] [INPUT]\n",
     "NAME\n"
     "    sbx encrypt - encrypt a file to recipients or to a passphrase\n"
     "\n"
     "SYNOPSIS\n"
     "    sbx encrypt (-r RECIPIENT | -R FILE | -i FILE | --kms URL)... [-a] [-o OUTPUT]\n"
     "                [--kms-token-file FILE] [--kms-cacert FILE] [--kms-fingerprint FP]\n"
     "                [INPUT]\n"
     "    sbx encrypt (-p | --passphrase-file FILE) [--work-factor N] [-a] [-o OUTPUT]\n"
     "                [INPUT]\n"
     "\n"
     "DESCRIPTION\n"
     "    Encrypt INPUT (standard input when absent or \"-\") into an age v1 file.\n"
     "    Every recipient given by -r, -R and -i can decrypt it. Alternatively,\n"
     "    encrypt to a passphrase; a passphrase must then be the only recipient.\n"
     "\n"
     "    The passphrase is never taken from the command line: -p asks for it\n"
     "    twice on the terminal (/dev/tty) with echo off; --passphrase-file reads\n"
     "    the first line of FILE (its trailing newline, \"\\n\" or \"\\r\\n\", is not\n"
     "    part of the passphrase). FILE may be /dev/fd/N or \"-\" (standard input).\n"
     "    An empty passphrase is refused.\n"
     "\n"
     "    With -o, the output is written to an unnamed temporary file in the\n"
     "    same directory and linked to OUTPUT only when complete: a failure or\n"
     "    an interruption leaves OUTPUT as it was. A symbolic link at OUTPUT is\n"
     "    refused (give the target's path). Without -o, the file goes to\n"
     "    standard output, which must not be a terminal unless -a is given.\n"
     "\n"
     "    --kms https://HOST:PORT/KEY encrypts to a key of an sbx kms serve key\n"
     "    server (envelope encryption): the server wraps the file key under KEY\n"
     "    and the answer is stored in a stanza of sbx's own type,\n"
     "    \"-> sbx-kms https://HOST:PORT/KEY\". The file stays valid age (age\n"
     "    skips that stanza); sbx decrypt unwraps it through the same server,\n"
     "    with the caller's credentials and no -i. --kms may be repeated and\n"
     "    combined with -r, -R and -i. The token comes from SBX_KMS_TOKEN or\n"
     "    SBX_KMS_TOKEN_FILE (or --kms-token-file; never from the command line,\n"
     "    where ps(1) would show it), the trust from SBX_KMS_CACERT or\n"
     "    SBX_KMS_FINGERPRINT (or the flags), else the system's CAs.\n"
     "\n"
     "    Age plugins: a recipient age1NAME1... (in -r or a -R file) or an\n"
     "    identity AGE-PLUGIN-NAME-1... (in an -i file) is handled by the program\n"
     "    age-plugin-NAME found in PATH, as age does (age-plugin-yubikey, ...;\n"
     "    docs/plugins.md). Its messages appear on standard error; a PIN or a\n"
     "    question it asks is asked on the terminal.\n"
     "\n"
     "OPTIONS\n"
     "    -r, --recipient RECIPIENT    encrypt to a public key: age1..., a plugin\n"
     "                                 recipient age1NAME1..., or an SSH public key\n"
     "                                 line \"ssh-ed25519 AAAA...\" (quote it);\n"
     "                                 repeatable\n"
     "    -R, --recipients-file FILE   encrypt to every recipient listed in FILE, one\n"
     "                                 per line (age1..., SSH authorized_keys lines,\n"
     "                                 PEM public keys); '#' comments and empty lines\n"
     "                                 are ignored; \"-\" is standard input; repeatable\n"
     "    -i, --identity FILE          encrypt to the public keys of the identities\n"
     "                                 in FILE (an identity file, also one encrypted\n"
     "                                 with a passphrase, or an SSH/PEM private key);\n"
     "                                 repeatable\n"
     "    -p, --passphrase             encrypt to a passphrase typed on the terminal\n"
     "        --passphrase-file FILE   encrypt to the passphrase on FILE's first line\n"
     "        --work-factor N          scrypt work factor log2(N) for a passphrase,\n"
     "                                 1-22 (default 18, as age: about 1 s)\n"
     "        --kms URL                encrypt to the key server key\n"
     "                                 https://HOST:PORT/KEY; repeatable\n"
     "        --kms-token-file FILE    the key server token, first line of FILE\n"
     "                                 (default: SBX_KMS_TOKEN or SBX_KMS_TOKEN_FILE)\n"
     "        --kms-cacert FILE        trust this CA (or self-signed certificate) for\n"
     "                                 the key server (default: SBX_KMS_CACERT)\n"
     "        --kms-fingerprint FP     pin the key server certificate's SHA-256, as\n"
     "                                 the server prints it (default:\n"
     "                                 SBX_KMS_FINGERPRINT)\n"
     "    -a, --armor                  write ASCII armor (PEM-style text)\n"
     "    -o, --output OUTPUT          write to OUTPUT instead of standard output\n"
     "    -j, --threads N              seal chunks on N threads (default: one per\n"
     "                                 CPU; the output is identical for every N)\n"
     "    -q, --quiet                  no progress bar (shown only when stderr is a\n"
     "                                 terminal and INPUT is a file over 8 MiB)\n"
     "    -h, --help                   show this page\n"
     "\n"
     "EXAMPLES\n"
     "    sbx encrypt -r age1... -o report.pdf.age report.pdf\n"
     "    sbx encrypt -r age1... -r age1... -R team.txt -o x.age x\n"
     "    sbx encrypt -a -r age1... < notes.txt > notes.txt.asc\n"
     "    sbx encrypt -i key.txt -o backup.age backup.tar\n"
     "    sbx encrypt -r \"$(cat ~/.ssh/id_ed25519.pub)\" -o notes.txt.age notes.txt\n"
     "    sbx encrypt -p -o secrets.age secrets.txt\n"
     "    sbx encrypt --passphrase-file pass.txt -o s.age s.txt\n"
     "    sbx encrypt --passphrase-file /dev/fd/3 -o s.age s.txt 3< pass.txt\n"
     "    tar c data/ | sbx encrypt -r age1... > data.tar.age\n"
     "    export SBX_KMS_TOKEN_FILE=~/.kms-token SBX_KMS_CACERT=/etc/kms-ca.pem\n"
     "    sbx encrypt --kms https://kms.example:8443/backups -o db.age db.dump\n"
     "    sbx encrypt --kms https://kms.example:8443/backups -r age1... -o db.age db.dump\n"
     "\n"},
    {"decrypt",
     "usage: sbx decrypt [-i FILE]... [--passphrase-file FILE] [--max-work-factor N]\n"
     "                   [--offset N] [--length M] [-j N] [-q] [-o OUTPUT] [INPUT]\n"
     "       sbx decrypt [--kms-url URL]... [--kms-token-file FILE] [--kms-cacert FILE]\n"
     "                   [--kms-fingerprint FP] [-o OUTPUT] [INPUT]\n",
     "NAME\n"
     "    sbx decrypt - decrypt and verify an age file\n"
     "\n"
     "SYNOPSIS\n"
     "    sbx decrypt [-i FILE]... [--passphrase-file FILE] [--max-work-factor N]\n"
     "                [--offset N] [--length M] [-j N] [-q] [-o OUTPUT] [INPUT]\n"
     "    sbx decrypt [--kms-url URL]... [--kms-token-file FILE] [--kms-cacert FILE]\n"
     "                [--kms-fingerprint FP] [-o OUTPUT] [INPUT]\n"
     "\n"
     "DESCRIPTION\n"
     "    Decrypt INPUT (standard input when absent or \"-\"), binary or ASCII\n"
     "    armored (detected automatically), with the identities of the -i files.\n"
     "    A passphrase-encrypted file needs no option: the passphrase is asked\n"
     "    on the terminal, or read from --passphrase-file, only when the file is\n"
     "    encrypted to a passphrase.\n"
     "\n"
     "    Everything is verified: a wrong key or passphrase, a tampered header,\n"
     "    a truncated or modified payload, trailing data and malformed armor\n"
     "    each fail with a message and exit status 1.\n"
     "\n"
     "    With -o, the plaintext goes to an unnamed temporary file (mode 0600,\n"
     "    subject to the umask) linked to OUTPUT only when the whole file\n"
     "    verified: on any failure, Ctrl-C or kill, OUTPUT does not appear, an\n"
     "    existing OUTPUT is left as it was, and no plaintext remains under any\n"
     "    other name (on a filesystem without O_TMPFILE, kill -9 can leave a\n"
     "    .OUTPUT.tmp-* file). A symbolic link at OUTPUT is refused: give the\n"
     "    target's own path.\n"
     "\n"
     "    To standard output, plaintext is written 64 KiB chunk by chunk, each\n"
     "    only after its authentication tag verified; if the command then fails\n"
     "    (e.g. a truncated file), discard what it printed.\n"
     "\n"
     "    sbx warns when an identity file is readable by other users.\n"
     "\n"
     "    Files encrypted with sbx encrypt --kms need no -i: when no other\n"
     "    identity matches, the file key is unwrapped by the key server named in\n"
     "    the file's sbx-kms stanza, with the token of SBX_KMS_TOKEN or\n"
     "    SBX_KMS_TOKEN_FILE (or --kms-token-file). The file names the server, so\n"
     "    the token is sent only to a server you allow: one listed in SBX_KMS_URL\n"
     "    (comma-separated) or by --kms-url, or, when none is listed, any server\n"
     "    whose certificate verifies against SBX_KMS_CACERT (--kms-cacert) or\n"
     "    matches SBX_KMS_FINGERPRINT (--kms-fingerprint). A stanza naming any\n"
     "    other server is skipped without contacting it, and the error names it.\n"
     "\n"
     "    An identity file may hold plugin identities AGE-PLUGIN-NAME-1... beside\n"
     "    native ones: each is handled by age-plugin-NAME in PATH, which is given\n"
     "    every stanza of the file (docs/plugins.md). A plugin that is missing or\n"
     "    fails does not stop the other identities; when none opens the file,\n"
     "    the error is the plugin's. `sbx kms age-identity` makes one for key\n"
     "    server files (age-plugin-sbxkms, installed beside sbx).\n"
     "\n"
     "OPTIONS\n"
     "    -i, --identity FILE          an identity file (AGE-SECRET-KEY-1... and\n"
     "                                 AGE-PLUGIN-NAME-1... lines, as written by sbx\n"
     "                                 keygen, age-keygen or a plugin; also one\n"
     "                                 encrypted with a passphrase, as age -p makes\n"
     "                                 it), or an SSH/PEM private key; repeatable\n"
     "        --passphrase-file FILE   read the passphrase (of the file, or of a\n"
     "                                 protected -i file) from FILE's first line\n"
     "                                 instead of the terminal (/dev/fd/N works)\n"
     "        --max-work-factor N      refuse passphrase files whose scrypt work factor\n"
     "                                 log2(N) is above N (default 22, as age)\n"
     "    -o, --output OUTPUT          write to OUTPUT instead of standard output\n"
     "        --offset N               start at plaintext byte N (random access: only\n"
     "                                 the chunks covering the range are read and\n"
     "                                 decrypted; INPUT must be a binary age file)\n"
     "        --length M               output at most M bytes (with --offset, or from\n"
     "                                 the start); a range past the end is cut short\n"
     "    -j, --threads N              open chunks on N threads (default: one per CPU)\n"
     "        --kms-url URL            a key server the token may be sent to (its\n"
     "                                 scheme, host and port count); repeatable\n"
     "                                 (default: SBX_KMS_URL)\n"
     "        --kms-token-file FILE    the key server token, first line of FILE\n"
     "                                 (default: SBX_KMS_TOKEN or SBX_KMS_TOKEN_FILE)\n"
     "        --kms-cacert FILE        trust this CA for the key server (default:\n"
     "                                 SBX_KMS_CACERT, else the system's CAs)\n"
     "        --kms-fingerprint FP     pin the key server certificate's SHA-256\n"
     "                                 (default: SBX_KMS_FINGERPRINT)\n"
     "    -q, --quiet                  no progress bar (shown only when stderr is a\n"
     "                                 terminal and INPUT is a file over 8 MiB)\n"
     "    -h, --help                   show this page\n"
     "\n"
     "EXAMPLES\n"
     "    sbx decrypt -i key.txt -o report.pdf report.pdf.age\n"
     "    sbx decrypt -i key.txt --offset 1048576 --length 4096 big.tar.age\n"
     "    sbx decrypt -i key.txt < notes.txt.asc\n"
     "    sbx decrypt secrets.age                     # asks for the passphrase\n"
     "    sbx decrypt --passphrase-file pass.txt s.age\n"
     "    sbx decrypt -i key.txt data.tar.age | tar x\n"
     "    sbx decrypt -i ~/.ssh/id_ed25519 -o notes.txt notes.txt.age\n"
     "    SBX_KMS_TOKEN_FILE=~/.kms-token SBX_KMS_URL=https://kms.example:8443 \\\n"
     "        sbx decrypt -o db.dump db.age\n"
     "    sbx decrypt --kms-token-file token.txt --kms-cacert ca.pem -o db.dump db.age\n"
     "\n"},
    {"destroy", usage_destroy, help_destroy},
    {"sign", usage_sign, help_sign},
    {"verify", usage_verify, help_verify},
    {"keygen-sign", usage_keygen_sign, help_keygen_sign},
    {"seal", usage_seal, help_seal},
    {"unseal", usage_unseal, help_unseal},
    {"migrate",
     "usage: sbx migrate -i KEY (-r RECIPIENT | -R FILE)... [-o OUTPUT]\n"
     "                   [--passphrase-file FILE] [--md md5|sha256] [--delete-original] ARCHIVE\n",
     "NAME\n"
     "    sbx migrate - re-encrypt a pyFileSec or opensslwrap archive to age\n"
     "\n"
     "SYNOPSIS\n"
     "    sbx migrate -i KEY (-r RECIPIENT | -R FILE)... [-o OUTPUT]\n"
     "                [--passphrase-file FILE] [--md md5|sha256] [--delete-original]\n"
     "                ARCHIVE\n"
     "\n"
     "DESCRIPTION\n"
     "    Read ARCHIVE, a pyFileSec \".enc\" archive or a PsychoPy opensslwrap\n"
     "    bundle (a gzip'd tar of NAME.aes256, the RSA-encrypted password and\n"
     "    NAME.meta), decrypt it with the RSA private key KEY, and write the\n"
     "    content as an age file to the new recipients. The old format is only\n"
     "    ever read, never written.\n"
     "\n"
     "    The archive is read twice, in constant memory whatever its size: the\n"
     "    first reading checks every member (plain names in UTF-8, regular\n"
     "    files, each once) and the data's format and hash, the second one\n"
     "    decrypts the data.\n"
     "\n"
     "    The old format has no real integrity protection: the ciphertext hash\n"
     "    recorded in the metadata (when there is one), the RSA padding and the\n"
     "    CBC padding are checked, and a warning says when no hash was recorded.\n"
     "    Check the content after migrating.\n"
     "\n"
     "    The output (default: NAME.age next to the archive, never overwritten)\n"
     "    is written atomically with mode 0600. The archive is kept unless\n"
     "    --delete-original is given, and then removed only after the new file\n"
     "    is complete.\n"
     "\n"
     "OPTIONS\n"
     "    -i, --identity KEY           the archive's RSA private key (PEM); if it is\n"
     "                                 encrypted, its passphrase is asked on the\n"
     "                                 terminal or read from --passphrase-file\n"
     "    -r, --recipient RECIPIENT    a new recipient (age1... or SSH); repeatable\n"
     "    -R, --recipients-file FILE   new recipients, one per line; repeatable\n"
     "    -o, --output OUTPUT          the age file to write\n"
     "        --passphrase-file FILE   the passphrase of KEY, from FILE's first line\n"
     "        --md md5|sha256          the key-derivation hash of the archive: md5\n"
     "                                 for OpenSSL 1.0.2 or older, sha256 for newer\n"
     "                                 (default: try sha256, then md5)\n"
     "        --delete-original        remove ARCHIVE once the age file is written\n"
     "    -h, --help                   show this page\n"
     "\n"
     "EXAMPLES\n"
     "    sbx migrate -i old-private.pem -r age1... data.csv.enc\n"
     "    sbx migrate -i old-private.pem -R team.txt -o data.csv.age data.csv.enc\n"
     "\n"},
    {"rotate", usage_rotate, help_rotate},
    {"pad", usage_pad, help_pad},
    {"unpad", usage_unpad, help_unpad},
    {"inspect", usage_inspect, help_inspect},
    {"kms", usage_kms, help_kms},
    {"help", "usage: sbx help [COMMAND]\n",
     "NAME\n"
     "    sbx help - show the manual page of a command\n"
     "\n"
     "SYNOPSIS\n"
     "    sbx help [COMMAND]\n"
     "    sbx COMMAND --help\n"
     "\n"
     "DESCRIPTION\n"
     "    Print the manual page of COMMAND (any command of the overview's\n"
     "    COMMANDS list, or keygen-sign for signing keys), or the overview of sbx\n"
     "    when COMMAND is absent.\n"
     "\n"
     "EXAMPLES\n"
     "    sbx help encrypt\n"
     "\n"},
};

const size_t cli_npages = sizeof(cli_pages) / sizeof(cli_pages[0]);

int
cmd_help(int argc, char **argv)
{
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "+:h", longopts, NULL)) != -1) {
        if (c != 'h')
            return cli_bad_option("help", c, argv, longopts);
        cli_help_print(stdout, "help");
        return CLI_OK;
    }
    if (argc - optind > 1)
        return cli_usage_errorf("help", "too many arguments");
    const char *name = argc - optind == 1 ? argv[optind] : "sbx";
    if (strcmp(name, "sbx") == 0) {
        cli_overview_print(stdout);
        return CLI_OK;
    }
    if (!cli_help_print(stdout, name)) {
        cli_errorf("no manual page for '%s'", name);
        command_list(stderr);
        return cli_usage("help");
    }
    return CLI_OK;
}
