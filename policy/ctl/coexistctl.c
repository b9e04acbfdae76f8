/*
 * coexistctl.c - the administration CLI's process entry point: it only
 * connects ctl_main to stdio and syslog.
 */
#include <malloc.h>
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

    /*
     * A wave is changed in parts (ctl_wave.c), each a tdb transaction that
     * mallocs a block per page it dirties and frees them all at its commit:
     * keep that memory for the next part rather than hand it back to the
     * kernel and fault it in again (at 10^6 users a 10^5-user wave took
     * 731,000 page faults without this, 450,000 with it).
     */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    openlog("coexistctl", LOG_PID, LOG_MAIL);
    rc = ctl_main(argc, argv, stdout, stderr, log_change, NULL);
    if (fflush(stdout) != 0 && rc == 0)
        rc = 74;
    closelog();
    return rc;
}
