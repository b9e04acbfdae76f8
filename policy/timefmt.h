/*
 * timefmt.h - ISO 8601 times, the one time syntax of the CLI and the records.
 */
#ifndef COEXIST_TIMEFMT_H
#define COEXIST_TIMEFMT_H

#include <stddef.h>
#include <time.h>

#define TIMEFMT_BUFSIZE 32

/*
 * timefmt_parse - "2026-12-04T18:00:00Z" or "...+01:00" (seconds optional) to
 * a time_t. A zone designator is required: a cutover must not depend on the
 * TZ of whoever ran the command. Returns 0, or -1 with *ERR set.
 */
int timefmt_parse(const char *text, time_t *out, const char **err);

/* timefmt_format - T as "YYYY-MM-DDTHH:MM:SSZ" (UTC) into OUT. */
void timefmt_format(time_t t, char out[TIMEFMT_BUFSIZE]);

#endif
