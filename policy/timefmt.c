/*
 * timefmt.c - ISO 8601 parsing and formatting (see timefmt.h).
 *
 * Hand-checked field by field rather than strptime(), whose %z handling and
 * leniency (trailing garbage, out-of-range fields) vary between libcs.
 */
#include <stdio.h>
#include <string.h>

#include "timefmt.h"

#define TIMEFMT_LAST 253402300799LL     /* 9999-12-31T23:59:59Z */

/* digits - parse exactly N decimal digits at *P. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];

        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

    return month == 2 && leap ? 29 : days[month - 1];
}

/* days_from_civil - days since 1970-01-01 of a proleptic Gregorian date. */
static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}

int timefmt_parse(const char *text, time_t *out, const char **err)
{
    const char *p = text;
    int year, mon, day, hour, min, sec = 0, oh = 0, om = 0, sign = 0;
    long long t;

    *err = "time must look like 2026-12-04T18:00:00Z or 2026-12-04T18:00:00+01:00";
    if (digits(&p, 4, &year) || *p++ != '-' || digits(&p, 2, &mon) || *p++ != '-'
        || digits(&p, 2, &day) || (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    if (digits(&p, 2, &hour) || *p++ != ':' || digits(&p, 2, &min))
        return -1;
    if (*p == ':' && (p++, digits(&p, 2, &sec)))
        return -1;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (digits(&p, 2, &oh))
            return -1;
        if (*p == ':')
            p++;
        if (digits(&p, 2, &om))
            return -1;
        if (oh > 23 || om > 59)
            return (*err = "time zone offset out of range"), -1;
    } else {
        return (*err = "time needs a zone: Z or +HH:MM"), -1;
    }
    if (*p != '\0')
        return -1;
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon)
        || hour > 23 || min > 59 || sec > 60)
        return (*err = "date or time field out of range"), -1;
    t = days_from_civil(year, mon, day) * 86400LL + hour * 3600 + min * 60 + sec
        - sign * (oh * 3600 + om * 60);
    /* An offset or a leap second can carry the instant past either end:
     * accept only what timefmt_format writes back in this syntax. */
    if (t < 0 || t > TIMEFMT_LAST)
        return (*err = "time out of range (1970 to 9999 in UTC)"), -1;
    *out = (time_t) t;
    return 0;
}

void timefmt_format(time_t t, char out[TIMEFMT_BUFSIZE])
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(out, TIMEFMT_BUFSIZE, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, TIMEFMT_BUFSIZE, "@%lld", (long long) t);
}
