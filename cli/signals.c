/*
 * cli/signals.c - what sbx does when a signal ends it: remove the named
 * temporary files of outputs still being written, then end as the signal
 * would have ended it (same status for the shell).
 *
 * Outputs are normally unnamed files until complete (strongbox/stream.h), so
 * a dying process leaves nothing; the handlers matter for the weaker case, a
 * filesystem without O_TMPFILE, where the temporary file has a name. SIGKILL
 * cannot be caught: there a named temporary file stays (documented).
 * Signals the caller set to be ignored (nohup, a shell's background job) stay
 * ignored.
 */
#include "cli.h"

#include <signal.h>
#include <stddef.h>

static const int fatal_signals[] = {SIGINT,  SIGTERM, SIGHUP,  SIGPIPE, SIGQUIT,
                                    SIGALRM, SIGUSR1, SIGUSR2, SIGXCPU, SIGXFSZ};

#define NSIGNALS (sizeof(fatal_signals) / sizeof(fatal_signals[0]))

static void
on_fatal_signal(int sig)
{
    sbx_atomic_cleanup(); // async-signal-safe
    signal(sig, SIG_DFL);
    raise(sig); // delivered when the handler returns: the process ends by sig
}

void
cli_signals_install(void)
{
    struct sigaction sa, old;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < NSIGNALS; i++)
        sigaddset(&sa.sa_mask, fatal_signals[i]); // one cleanup, not interrupted by another
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = 0;
    for (size_t i = 0; i < NSIGNALS; i++) {
        if (sigaction(fatal_signals[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(fatal_signals[i], &sa, NULL);
    }
}
