/*
 * cli/sign_cmds.h - sbx sign, sbx verify and sbx keygen --sign
 * (cli/sign.c, over strongbox/sign.h).
 *
 * Each command exports its manual page as two arrays, usable in the static
 * page table of cli/help.c: usage_<cmd> ("usage: ..." lines) and help_<cmd>
 * (NAME ... EXAMPLES; help.c appends EXIT STATUS).
 */
#ifndef SBX_CLI_SIGN_CMDS_H
#define SBX_CLI_SIGN_CMDS_H

#include "cli.h"

int cmd_sign(int argc, char **argv);
int cmd_verify(int argc, char **argv);
/** `sbx keygen --sign ...`: argv[0] is "keygen"; --sign may appear anywhere and is ignored. */
int cmd_keygen_sign(int argc, char **argv);

extern const char usage_sign[], help_sign[];
extern const char usage_verify[], help_verify[];
extern const char usage_keygen_sign[], help_keygen_sign[];

#endif
