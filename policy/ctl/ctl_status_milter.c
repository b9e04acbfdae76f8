/*
 * ctl_status_milter.c - whether the milter answers on its socket, for
 * coexistctl status: a real milter negotiation (doctor_probe, the one
 * doctor makes), not just a connect, since a hung daemon still accepts.
 * One line; it never fails status (the host may run no milter at all).
 */
#include <stdio.h>
#include <string.h>

#include "policy/config.h"   /* not autoconf's config.h */
#include "ctl.h"
#include "doctor.h"

#define STATUS_PROBE_MS 2000

void ctl_status_milter(struct ctl *c)
{
    char why[DOCTOR_ERR_MAX], missing[256];
    struct doctor_optneg neg;
    struct doctor_sock sock;
    int err_no;

    if (doctor_sock_milter(c->cfg.socket, &sock) < 0) {
        fprintf(c->out, "milter: socket '%s' is not one this coexistctl can reach\n",
                c->cfg.socket);
        return;
    }
    if (doctor_probe(&sock, STATUS_PROBE_MS, &neg, &err_no, why) < 0) {
        fprintf(c->out, "milter: %s does not answer a negotiation: %s\n", c->cfg.socket, why);
        return;
    }
    if (doctor_optneg_missing(neg.dn_actions, missing, sizeof(missing)) != 0)
        fprintf(c->out, "milter: %s answers (protocol version %lu) but does not ask for: "
                "%s\n", c->cfg.socket, neg.dn_version, missing);
    else
        fprintf(c->out, "milter: %s answers (protocol version %lu, the actions it needs)\n",
                c->cfg.socket, neg.dn_version);
}
