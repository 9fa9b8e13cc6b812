/*
 * cli/destroy_seal_cmds.h - sbx destroy (cli/destroy.c), sbx seal and sbx
 * unseal (cli/seal.c), and the JSON members their reports share.
 *
 * Each command exports its manual page as two arrays, usable in the static
 * page table of cli/help.c: usage_<cmd> ("usage: ..." lines) and help_<cmd>
 * (NAME ... EXAMPLES; help.c appends EXIT STATUS).
 */
#ifndef SBX_CLI_DESTROY_SEAL_CMDS_H
#define SBX_CLI_DESTROY_SEAL_CMDS_H

#include "json_out.h"

#include "strongbox/fileops.h"

int cmd_destroy(int argc, char **argv);
int cmd_seal(int argc, char **argv);
int cmd_unseal(int argc, char **argv);
extern const char usage_destroy[], help_destroy[];
extern const char usage_seal[], help_seal[];
extern const char usage_unseal[], help_unseal[];

/** The members "ok" [, "error", "error_code"] of a result (err: 0 or a negative SBX_E* code). */
void cli_json_error_fields(cli_json *j, int err);
/** The members of a destroy report. */
void cli_json_destroy_fields(cli_json *j, const sbx_destroy_report *r);

#endif
