/*
 * cli/main.c - the sbx command: global options and subcommand dispatch.
 */
#include "cli.h"
#include "fileops_cmds.h"
#include "destroy_seal_cmds.h"
#include "sign_cmds.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

int cmd_kms(int argc, char **argv); // cli/kms.c

// clang-format off
const struct cli_command cli_commands[] = {
    {"keygen", cmd_keygen},
    {"encrypt", cmd_encrypt},
    {"decrypt", cmd_decrypt},
    {"migrate", cmd_migrate},
    {"seal", cmd_seal},
    {"unseal", cmd_unseal},
    {"destroy", cmd_destroy},
    {"sign", cmd_sign},
    {"verify", cmd_verify},
    {"rotate", cmd_rotate},
    {"pad", cmd_pad},
    {"unpad", cmd_unpad},
    {"inspect", cmd_inspect},
    {"kms", cmd_kms},
    {"help", cmd_help},
};
// clang-format on
const size_t cli_ncommands = sizeof(cli_commands) / sizeof(cli_commands[0]);

int
main(int argc, char **argv)
{
    cli_process_start();   // before anything else: key memory locked, no core dumps
    cli_signals_install(); // a signal removes the named temporary file of an output
    if (argc < 2)
        return cli_overview_usage();
    const char *name = argv[1];
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0 || strcmp(name, "version") == 0) {
        printf("sbx %s\n", SBX_VERSION_STRING);
        return CLI_OK;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        cli_overview_print(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < cli_ncommands; i++) {
        if (strcmp(name, cli_commands[i].name) == 0)
            return cli_commands[i].run(argc - 1, argv + 1);
    }
    cli_errorf("unknown command '%s'", name);
    return cli_overview_usage();
}
