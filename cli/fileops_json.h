/* cli/fileops_json.h - JSON output helpers shared by destroy, seal and unseal. */
#ifndef SBX_CLI_FILEOPS_JSON_H
#define SBX_CLI_FILEOPS_JSON_H

#include "strongbox/fileops.h"

#include <stdio.h>

/* The commands of cli/destroy.c and cli/seal.c, and their pages for the table in help.c
 * (usage_<cmd>: "usage: ..." lines; help_<cmd>: NAME ... EXAMPLES, help.c adds EXIT STATUS). */
int cmd_destroy(int argc, char **argv);
int cmd_seal(int argc, char **argv);
int cmd_unseal(int argc, char **argv);
extern const char usage_destroy[], help_destroy[];
extern const char usage_seal[], help_seal[];
extern const char usage_unseal[], help_unseal[];

/** Write s as a JSON string (quoted, escaped). */
void cli_json_str(FILE *f, const char *s);
/** Write "ok": true|false [, "error": ..., "error_code": ...] (no braces). */
void cli_json_error_fields(FILE *f, int err);
/** Write the fields of a destroy report (no braces). */
void cli_json_destroy_fields(FILE *f, const sbx_destroy_report *r);

#endif
