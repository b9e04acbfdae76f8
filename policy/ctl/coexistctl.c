/*
 * coexistctl.c - the administration CLI's process entry point: it only
 * connects ctl_main to stdio and syslog.
 */
#include <syslog.h>

#include "ctl.h"

/* log_change - one syslog line per change, ident coexistctl, facility mail. */
static void log_change(const char *message, void *ctx)
{
    (void) ctx;
    syslog(LOG_NOTICE, "%s", message);
}

int main(int argc, char **argv)
{
    int rc;

    openlog("coexistctl", LOG_PID, LOG_MAIL);
    rc = ctl_main(argc, argv, stdout, stderr, log_change, NULL);
    if (fflush(stdout) != 0 && rc == 0)
        rc = 74;
    closelog();
    return rc;
}
