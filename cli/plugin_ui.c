/*
 * cli/plugin_ui.c - how an age plugin talks to the user of sbx: messages on
 * standard error, questions and PINs on the terminal (/dev/tty, never
 * standard input, which may be the data). Without a terminal a question is
 * refused, and the plugin's error then says what it needed.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int
show(const char *plugin, const char *message, void *payload)
{
    (void)payload;
    fprintf(stderr, "sbx: age-plugin-%s: %s\n", plugin, message);
    return 0;
}

static int
ask(sbx_buf *out, const char *prompt, bool secret)
{
    char why[256];
    int err = cli_tty_ask(out, prompt, secret, why, sizeof(why));
    return err < 0 ? sbx_error_set(err, "%s", why) : 0;
}

static int
confirm(const char *plugin, const char *message, const char *yes, const char *no, bool *chose_yes,
        void *payload)
{
    char prompt[2600];
    (void)payload;
    for (;;) {
        sbx_buf line = SBX_BUF_INIT;
        if (no != NULL)
            snprintf(prompt, sizeof(prompt), "age-plugin-%s: %s [%s/%s]: ", plugin, message, yes,
                     no);
        else
            snprintf(prompt, sizeof(prompt), "age-plugin-%s: %s [press Enter: %s]: ", plugin,
                     message, yes);
        int err = ask(&line, prompt, false);
        if (err < 0)
            return err;
        char answer[256] = "";
        snprintf(answer, sizeof(answer), "%.*s", (int)line.len, (const char *)line.ptr);
        sbx_buf_dispose(&line);
        if (no == NULL || answer[0] == '\0' || strcasecmp(answer, yes) == 0 ||
            strcasecmp(answer, "y") == 0 || strcasecmp(answer, "yes") == 0) {
            *chose_yes = true;
            return 0;
        }
        if (strcasecmp(answer, no) == 0 || strcasecmp(answer, "n") == 0 ||
            strcasecmp(answer, "no") == 0) {
            *chose_yes = false;
            return 0;
        }
    }
}

static int
request(sbx_buf *out, const char *plugin, const char *message, bool secret, void *payload)
{
    char prompt[1200];
    (void)payload;
    snprintf(prompt, sizeof(prompt), "age-plugin-%s: %s: ", plugin, message);
    return ask(out, prompt, secret);
}

static const sbx_plugin_ui terminal_ui = {SBX_PLUGIN_UI_VERSION, show, confirm, request, NULL};

void
cli_plugin_ui_identities(sbx_identity **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sbx_plugin_identity_set_ui(ids[i], &terminal_ui);
}

void
cli_plugin_ui_recipients(sbx_recipient **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sbx_plugin_recipient_set_ui(list[i], &terminal_ui);
}
