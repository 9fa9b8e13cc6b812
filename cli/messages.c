/*
 * cli/messages.c - how sbx words its messages: "sbx: error: ...", usage
 * errors, getopt failures, integer options. Shared with the key server
 * program (server/main.c), which speaks as `sbx kms`.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

void
cli_process_start(void)
{
    if (sbx_init() < 0 && getenv("SBX_DEBUG") != NULL)
        cli_warnf("%s", sbx_error_last()->message);
    if (sbx_disable_core_dumps() < 0)
        cli_warnf("%s", sbx_error_last()->message);
    opterr = 0; // cli_bad_option() words the messages
}

static void
vmessage(const char *kind, const char *fmt, va_list ap)
{
    fprintf(stderr, "sbx: %s: ", kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void
cli_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("error", fmt, ap);
    va_end(ap);
}

void
cli_warnf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning", fmt, ap);
    va_end(ap);
}

void
cli_hintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("hint", fmt, ap);
    va_end(ap);
}

void
cli_error_lib(const char *prefix)
{
    const char *msg = sbx_error_last()->message;
    if (prefix != NULL)
        cli_errorf("%s: %s", prefix, msg);
    else
        cli_errorf("%s", msg);
}

int
cli_usage_errorf(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("error", fmt, ap);
    va_end(ap);
    return cli_usage(command);
}

static bool
is_long_option(const struct option *longopts, const char *name, size_t len)
{
    for (; longopts->name != NULL; longopts++) {
        if (strncmp(longopts->name, name, len) == 0)
            return true; // getopt_long accepts unique prefixes too
    }
    return false;
}

int
cli_bad_option(const char *command, int c, char **argv, const struct option *longopts)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    size_t len = strcspn(arg, "=");
    if (c == ':' && strncmp(arg, "--", 2) == 0)
        return cli_usage_errorf(command, "option %.*s needs an argument", (int)len, arg);
    if (c == ':')
        return cli_usage_errorf(command, "option -%c needs an argument", optopt);
    if (strncmp(arg, "--", 2) == 0 && arg[len] == '=' && is_long_option(longopts, arg + 2, len - 2))
        return cli_usage_errorf(command, "option %.*s takes no argument", (int)len, arg);
    if (strncmp(arg, "--", 2) == 0)
        return cli_usage_errorf(command, "unknown option %.*s", (int)len, arg);
    if (optopt == 'j' && is_long_option(longopts, "json", 4)) {
        // -j was --json in seal, unseal and destroy before it meant --threads everywhere
        cli_errorf("unknown option -j (--json has no short form; -j N is --threads)");
        return cli_usage(command);
    }
    if (optopt > 0 && optopt < 128)
        return cli_usage_errorf(command, "unknown option -%c", optopt);
    return cli_usage_errorf(command, "unknown option %s", arg);
}

int
cli_operands_check(const char *command, int argc, char **argv)
{
    if (optind > 1 && strcmp(argv[optind - 1], "--") == 0)
        return CLI_OK; // "--" ended the options: everything after it is an operand
    for (int i = optind; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return cli_usage_errorf(command,
                                    "'%s' comes after the operands, but options go before them "
                                    "(nothing was done); for a file whose name starts with '-', "
                                    "write ./%s or put -- before the operands",
                                    argv[i], argv[i]);
    }
    return CLI_OK;
}

bool
cli_parse_int(int *out, const char *s, int min, int max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return false;
    *out = (int)v;
    return true;
}
