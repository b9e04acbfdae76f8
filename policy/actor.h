/*
 * actor.h - who is changing the store, for the journal and the syslog line.
 */
#ifndef COEXIST_ACTOR_H
#define COEXIST_ACTOR_H

#include "record.h"

/*
 * actor_current - "login/uid" of the invoking user into OUT. Under sudo the
 * login is the sudoing user's, since "root" tells an auditor nothing.
 */
void actor_current(char out[RECORD_ACTOR_MAX + 1]);

#endif
