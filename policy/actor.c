/*
 * actor.c - the identity recorded with every change (see actor.h).
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actor.h"

void actor_current(char out[RECORD_ACTOR_MAX + 1])
{
    uid_t uid = getuid();
    struct passwd *pw = getpwuid(uid);
    const char *login = pw ? pw->pw_name : "unknown";
    const char *sudo_user = getenv("SUDO_USER");
    char *p;

    if (uid == 0 && sudo_user != NULL && sudo_user[0] != '\0')
        login = sudo_user;
    snprintf(out, RECORD_ACTOR_MAX + 1, "%.40s/%lu", login, (unsigned long) uid);
    /* The actor is a record word: keep it to characters the codec accepts. */
    for (p = out; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
              || strchr("._-/@+", *p)))
            *p = '_';
}
