/*
 * cli/manual.c - printing manual pages and usage lines from the page table
 * of the program (cli_pages: every command in sbx, the kms page in the key
 * server program), so both word them the same way.
 */
#include "cli.h"

#include <string.h>

static const char exit_status[] = "EXIT STATUS\n"
                                  "    0  success\n"
                                  "    1  failure (the message says what failed)\n"
                                  "    2  usage error (unknown option, missing or conflicting "
                                  "arguments)\n";

const struct cli_page *
cli_page_find(const char *name)
{
    for (size_t i = 0; i < cli_npages; i++) {
        if (strcmp(cli_pages[i].name, name) == 0)
            return &cli_pages[i];
    }
    return NULL;
}

bool
cli_help_print(FILE *f, const char *command)
{
    const struct cli_page *p = cli_page_find(command);
    if (p == NULL)
        return false;
    fputs(p->text, f);
    cli_exit_status_print(f);
    return true;
}

void
cli_exit_status_print(FILE *f)
{
    fputs(exit_status, f);
}

int
cli_usage(const char *command)
{
    const struct cli_page *p = cli_page_find(command);
    if (p != NULL)
        fputs(p->usage, stderr);
    if (strcmp(command, "sbx") == 0)
        fputs("Run 'sbx help' for the manual.\n", stderr);
    else
        fprintf(stderr, "Run 'sbx help %s' for the manual.\n", command);
    return CLI_USAGE;
}
