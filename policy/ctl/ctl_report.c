/*
 * ctl_report.c - coexistctl report: who still gets mail through the legacy
 * system (DESIGN section 12).
 *
 * It joins the state store (state, mode, wave of every record) with
 * counters_db, which the milter flushes every counters_interval: one row
 * per key of either, sorted, a key only the counters know shown as
 * "removed". Then the totals per wave, and a last line with the mail
 * routed to the legacy system in the last 1 and 7 days: "0 in the last 7
 * days" is what an admin waits for before switching the legacy system off.
 * "The last N days" is today (UTC) and the N whole days before it, so 0
 * means at least N days without any. With shared_store, the other hosts'
 * counters (pushed into the database by their followers) are summed in,
 * key by key; a database that cannot be read fails the report rather than
 * show a sum that misses hosts.
 */
#include <csv.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "counters.h"
#include "ctl.h"
#include "report_hosts.h"
#include "timefmt.h"

enum report_state { REP_UNMIGRATED, REP_SCHEDULED, REP_MIGRATED, REP_REMOVED };
static const char *const report_state_names[] = {"unmigrated", "scheduled", "migrated",
                                                 "removed"};

struct report_row {
    char *key;
    int have_rec, have_cnt;
    struct record rec;
    struct counters_rec cnt;
    enum report_state state;
    unsigned long legacy1, legacy7, reverse1, reverse7;
    const char *why;            /* --idle: why it is listed */
};

struct report_list {
    struct report_row *rows;
    size_t count, cap;
};

struct wave_total {
    char wave[RECORD_WAVE_MAX + 16];
    unsigned long users[4];     /* by report_state */
    unsigned long legacy1, legacy7, reverse7;
};

struct report {
    struct ctl *c;
    struct report_list recs, cnts, rows;
    struct wave_total *waves;
    size_t nwaves;
    char counters_path[CONFIG_STR_MAX * 2];
    time_t since, flushed;      /* counting started, last flush */
    long today;
    time_t idle_before;         /* --idle: last routing before this */
    time_t since_opt;           /* --since */
    unsigned long legacy1, legacy7, reverse1, reverse7;
    char hosts[1024];           /* the other hosts summed in, "" if none */
    size_t nhosts;
};

/* list_add - a new zeroed row for KEY; NULL if out of memory. */
static struct report_row *list_add(struct report_list *l, const char *key)
{
    struct report_row *row;

    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        struct report_row *grown = realloc(l->rows, cap * sizeof(*grown));

        if (grown == NULL)
            return NULL;
        l->rows = grown;
        l->cap = cap;
    }
    row = &l->rows[l->count];
    memset(row, 0, sizeof(*row));
    if ((row->key = strdup(key)) == NULL)
        return NULL;
    l->count++;
    return row;
}

static void list_free(struct report_list *l, int keys)
{
    for (size_t i = 0; keys && i < l->count; i++)
        free(l->rows[i].key);
    free(l->rows);
}

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct report_row *) a)->key, ((const struct report_row *) b)->key);
}

static void list_sort(struct report_list *l)
{
    if (l->count > 1)
        qsort(l->rows, l->count, sizeof(l->rows[0]), row_cmp);
}

static int visit_record(const char *key, const struct record *rec, void *ctx)
{
    struct report_row *row = list_add(ctx, key);

    if (row == NULL)
        return -1;
    row->have_rec = 1;
    row->rec = *rec;
    return 0;
}

static int visit_counter(const char *key, const struct counters_rec *rec, void *ctx)
{
    struct report_row *row = list_add(ctx, key);

    if (row == NULL)
        return -1;
    row->have_cnt = 1;
    row->cnt = *rec;
    return 0;
}

/* visit_host - another host summed in: "NODE (last flush TIME)" noted. */
static int visit_host(const char *node, const char *flushed, void *ctx)
{
    struct report *r = ctx;
    size_t len = strlen(r->hosts);

    snprintf(r->hosts + len, sizeof(r->hosts) - len, "%s%.64s (last flush %.32s)",
             len ? ", " : "", node, flushed);
    r->nhosts++;
    return 0;
}

/* visit_host_counter - another host's counters of KEY, to be summed. */
static int visit_host_counter(const char *key, const struct counters_rec *rec, void *ctx)
{
    struct report *r = ctx;

    return visit_counter(key, rec, &r->cnts);
}

/* load_counters - counters_db beside the store, read whole, and with
 * shared_store every other host's. EX_OK or a code. */
static int load_counters(struct report *r)
{
    struct ctl *c = r->c;
    char err[COUNTERS_ERR_MAX];
    struct counters_db *db;
    int rc = EX_OK;

    if (config_beside(c->cfg.counters_db, c->db_path, r->counters_path,
                      sizeof(r->counters_path)) < 0 || r->counters_path[0] == '\0') {
        fprintf(c->err, "coexistctl: report: counters_db is not configured: the milter "
                "counts nothing\n");
        return EX_CONFIG;
    }
    if ((db = counters_open(r->counters_path, 0, err)) == NULL) {
        /* a host that runs no milter (or none yet) may still sum the others */
        if (errno == ENOENT && c->cfg.shared_store[0] != '\0')
            return report_hosts_load(c, visit_host, visit_host_counter, r);
        fprintf(c->err, "coexistctl: report: %s%s\n", err, errno == ENOENT
                ? " (the milter makes it at its first flush, counters_interval after it "
                "started)" : "");
        return errno == ENOENT ? EX_NOINPUT : EX_IOERR;
    }
    if (counters_times(db, &r->since, &r->flushed, err) < 0
        || counters_traverse(db, visit_counter, &r->cnts, err) < 0) {
        fprintf(c->err, "coexistctl: report: %s\n", err);
        rc = EX_DATAERR;
    }
    counters_close(db);
    if (rc == EX_OK && c->cfg.shared_store[0] != '\0')
        rc = report_hosts_load(c, visit_host, visit_host_counter, r);
    return rc;
}

/* row_state - what REC's state is now; a key without a record was removed. */
static enum report_state row_state(const struct report_row *row, time_t now)
{
    if (!row->have_rec)
        return REP_REMOVED;
    if (record_effective_state(&row->rec, now) == STATE_MIGRATED)
        return REP_MIGRATED;
    return row->rec.cutover != 0 ? REP_SCHEDULED : REP_UNMIGRATED;
}

/* join - records and counters, both sorted, merged into one row per key. */
/* collapse - one row per key: several hosts' counters of a key summed. */
static void collapse(struct report *r)
{
    size_t kept = 0;

    for (size_t i = 0; i < r->cnts.count; i++) {
        struct report_row *row = &r->cnts.rows[i];

        if (kept > 0 && strcmp(r->cnts.rows[kept - 1].key, row->key) == 0) {
            counters_add(&r->cnts.rows[kept - 1].cnt, &row->cnt, r->today);
            free(row->key);
            continue;
        }
        r->cnts.rows[kept++] = *row;
    }
    r->cnts.count = kept;
}

static int join(struct report *r)
{
    size_t i = 0, j = 0;

    list_sort(&r->recs);
    list_sort(&r->cnts);
    collapse(r);
    while (i < r->recs.count || j < r->cnts.count) {
        int cmp = i == r->recs.count ? 1 : j == r->cnts.count ? -1
            : strcmp(r->recs.rows[i].key, r->cnts.rows[j].key);
        struct report_row *row;

        if (r->rows.count == r->rows.cap) {
            size_t cap = r->rows.cap ? 2 * r->rows.cap : 256;
            struct report_row *grown = realloc(r->rows.rows, cap * sizeof(*grown));

            if (grown == NULL)
                return -1;
            r->rows.rows = grown;
            r->rows.cap = cap;
        }
        row = &r->rows.rows[r->rows.count++];
        if (cmp <= 0)
            *row = r->recs.rows[i++];
        if (cmp >= 0) {
            const struct report_row *cnt = &r->cnts.rows[j++];

            if (cmp > 0)
                *row = *cnt;
            row->have_cnt = 1;
            row->cnt = cnt->cnt;
        }
        row->state = row_state(row, r->c->now);
        if (row->have_cnt) {
            counters_window(&row->cnt, r->today, 1, &row->legacy1, &row->reverse1);
            counters_window(&row->cnt, r->today, 7, &row->legacy7, &row->reverse7);
        }
    }
    /* The keys stay owned by recs and cnts. */
    return 0;
}

/* in_wave - --wave W: rows of records in wave W. */
static int in_wave(const struct report *r, const struct report_row *row)
{
    const char *w = r->c->opt_wave;

    return w == NULL || (row->have_rec && strcmp(row->rec.wave, w) == 0);
}

/*
 * idle_why - --idle DAYS: an unmigrated user whose legacy traffic stopped
 * DAYS ago (or never came, counting having run that long), or a migrated
 * one with reverse routing whose legacy alias still got mail since. NULL:
 * not listed.
 */
static const char *idle_why(const struct report *r, const struct report_row *row)
{
    time_t last = row->have_cnt ? row->cnt.last : 0;

    if (row->state == REP_UNMIGRATED || row->state == REP_SCHEDULED) {
        if (last != 0)
            return last < r->idle_before ? "idle" : NULL;
        return r->since != 0 && r->since <= r->idle_before ? "never-routed" : NULL;
    }
    if (row->state == REP_MIGRATED && row->rec.reverse && row->have_cnt
        && row->cnt.rlast >= r->idle_before)
        return "alias-in-use";
    return NULL;
}

/* shown - whether ROW is listed under the options given. */
static int shown(struct report *r, struct report_row *row)
{
    if (!in_wave(r, row))
        return 0;
    if (r->since_opt && (!row->have_cnt || row->cnt.last < r->since_opt))
        return 0;
    if (r->c->opt_idle && (row->why = idle_why(r, row)) == NULL)
        return 0;
    return 1;
}

/* wave_of - the totals of ROW's wave, added when new; NULL if out of memory. */
static struct wave_total *wave_of(struct report *r, const struct report_row *row)
{
    const char *name = row->state == REP_REMOVED ? "(removed)"
        : row->rec.kind == RECORD_DOMAIN ? "(domain rules)"
        : row->rec.wave[0] ? row->rec.wave : "-";
    struct wave_total *grown;

    for (size_t i = 0; i < r->nwaves; i++)
        if (strcmp(r->waves[i].wave, name) == 0)
            return &r->waves[i];
    if ((grown = realloc(r->waves, (r->nwaves + 1) * sizeof(*grown))) == NULL)
        return NULL;
    r->waves = grown;
    memset(&r->waves[r->nwaves], 0, sizeof(r->waves[0]));
    snprintf(r->waves[r->nwaves].wave, sizeof(r->waves[0].wave), "%s", name);
    return &r->waves[r->nwaves++];
}

/* totals - per wave and overall, over the rows --wave lets through. */
static int totals(struct report *r)
{
    for (size_t i = 0; i < r->rows.count; i++) {
        const struct report_row *row = &r->rows.rows[i];
        struct wave_total *w;

        if (!in_wave(r, row))
            continue;
        if ((w = wave_of(r, row)) == NULL)
            return -1;
        w->users[row->state]++;
        w->legacy1 += row->legacy1;
        w->legacy7 += row->legacy7;
        w->reverse7 += row->reverse7;
        r->legacy1 += row->legacy1;
        r->legacy7 += row->legacy7;
        r->reverse1 += row->reverse1;
        r->reverse7 += row->reverse7;
    }
    return 0;
}

/* time_text - ISO 8601, or "-" for never. */
static void time_text(time_t t, char out[TIMEFMT_BUFSIZE])
{
    if (t == 0)
        strcpy(out, "-");
    else
        timefmt_format(t, out);
}

/* mode_of - a row's mode, "-" for a removed key. */
static const char *mode_of(const struct report_row *row)
{
    return row->have_rec ? record_mode_name(row->rec.mode) : "-";
}

/* wave_name - a row's wave, "-" for none. */
static const char *wave_name(const struct report_row *row)
{
    return row->have_rec && row->rec.wave[0] ? row->rec.wave : "-";
}

/* last_line - the signal: legacy mail in the last 1 and 7 days. */
static void last_line(const struct report *r, FILE *fp)
{
    char since[TIMEFMT_BUFSIZE];

    fprintf(fp, "legacy traffic: %lu in the last 1 day, %lu in the last 7 days; "
            "reverse: %lu in the last 1 day, %lu in the last 7 days", r->legacy1,
            r->legacy7, r->reverse1, r->reverse7);
    if (r->since > r->c->now - 7 * 86400) {
        time_text(r->since, since);
        fprintf(fp, " (counting since %s: less than 7 days)", since);
    }
    fputc('\n', fp);
}

static void print_text(struct report *r)
{
    FILE *fp = r->c->out;
    char since[TIMEFMT_BUFSIZE], flushed[TIMEFMT_BUFSIZE], last[TIMEFMT_BUFSIZE];

    time_text(r->since, since);
    time_text(r->flushed, flushed);
    fprintf(fp, "counters: %s (counting since %s, last flush %s)\n", r->counters_path,
            since, flushed);
    if (r->nhosts > 0)
        fprintf(fp, "summed with %zu other host%s from the shared store: %s\n", r->nhosts,
                r->nhosts == 1 ? "" : "s", r->hosts);
    fputc('\n', fp);
    fprintf(fp, "%-32s %-10s %-7s %-10s %8s %8s %8s %-20s %8s%s\n", "ADDRESS", "STATE",
            "MODE", "WAVE", "COPIES", "REWRITES", "REVERSE", "LAST-ROUTED", "LEGACY-7D",
            r->c->opt_idle ? " WHY" : "");
    for (size_t i = 0; i < r->rows.count; i++) {
        struct report_row *row = &r->rows.rows[i];

        if (!shown(r, row))
            continue;
        time_text(row->have_cnt ? row->cnt.last : 0, last);
        fprintf(fp, "%-32s %-10s %-7s %-10s %8lu %8lu %8lu %-20s %8lu%s%s\n", row->key,
                report_state_names[row->state], mode_of(row), wave_name(row),
                row->cnt.copies, row->cnt.rewrites, row->cnt.reverse, last, row->legacy7,
                row->why ? " " : "", row->why ? row->why : "");
    }
    fprintf(fp, "\n%-16s %10s %10s %10s %10s %8s %10s %10s\n", "WAVE", "UNMIGRATED",
            "SCHEDULED", "MIGRATED", "REMOVED", "DONE", "LEGACY-1D", "LEGACY-7D");
    for (size_t i = 0; i < r->nwaves; i++) {
        const struct wave_total *w = &r->waves[i];
        unsigned long all = w->users[0] + w->users[1] + w->users[2];
        char done[16];

        snprintf(done, sizeof(done), "%lu%%", all ? 100 * w->users[REP_MIGRATED] / all : 0);
        fprintf(fp, "%-16s %10lu %10lu %10lu %10lu %8s %10lu %10lu\n", w->wave,
                w->users[REP_UNMIGRATED], w->users[REP_SCHEDULED], w->users[REP_MIGRATED],
                w->users[REP_REMOVED], all ? done : "-", w->legacy1, w->legacy7);
    }
    fputc('\n', fp);
    last_line(r, fp);
}

/* csv_field - one field, quoted only when it must be (as export does). */
static void csv_field(FILE *fp, const char *s, int first)
{
    if (!first)
        putc(',', fp);
    if (strpbrk(s, ",\"\r\n"))
        csv_fwrite(fp, s, strlen(s));
    else
        fputs(s, fp);
}

static void print_csv(struct report *r)
{
    FILE *fp = r->c->out;

    fputs("address,state,mode,wave,copies,rewrites,reverse,first,last,last_reverse,"
          "legacy_1d,legacy_7d,reverse_7d", fp);
    fputs(r->c->opt_idle ? ",why\n" : "\n", fp);
    for (size_t i = 0; i < r->rows.count; i++) {
        struct report_row *row = &r->rows.rows[i];
        char first[TIMEFMT_BUFSIZE], last[TIMEFMT_BUFSIZE], rlast[TIMEFMT_BUFSIZE];

        if (!shown(r, row))
            continue;
        time_text(row->cnt.first, first);
        time_text(row->cnt.last, last);
        time_text(row->cnt.rlast, rlast);
        csv_field(fp, row->key, 1);
        csv_field(fp, report_state_names[row->state], 0);
        csv_field(fp, mode_of(row), 0);
        csv_field(fp, row->have_rec ? row->rec.wave : "", 0);
        fprintf(fp, ",%lu,%lu,%lu,%s,%s,%s,%lu,%lu,%lu", row->cnt.copies, row->cnt.rewrites,
                row->cnt.reverse, row->cnt.first ? first : "", row->cnt.last ? last : "",
                row->cnt.rlast ? rlast : "", row->legacy1, row->legacy7, row->reverse7);
        if (r->c->opt_idle)
            csv_field(fp, row->why, 0);
        putc('\n', fp);
    }
}

/* json_time - a time as ISO 8601, or null. */
static json_t *json_time(time_t t)
{
    char text[TIMEFMT_BUFSIZE];

    if (t == 0)
        return json_null();
    timefmt_format(t, text);
    return json_string(text);
}

static int print_json(struct report *r)
{
    json_t *top = json_object(), *users = json_array(), *waves = json_array();
    int rc = 0;

    if (top == NULL || users == NULL || waves == NULL)
        rc = -1;
    for (size_t i = 0; rc == 0 && i < r->rows.count; i++) {
        struct report_row *row = &r->rows.rows[i];
        json_t *o;

        if (!shown(r, row))
            continue;
        o = json_pack("{s:s, s:s, s:s, s:s?, s:I, s:I, s:I, s:o, s:o, s:o, s:I, s:I, s:I}",
                      "address", row->key, "state", report_state_names[row->state],
                      "mode", mode_of(row), "wave",
                      row->have_rec && row->rec.wave[0] ? row->rec.wave : NULL,
                      "copies", (json_int_t) row->cnt.copies,
                      "rewrites", (json_int_t) row->cnt.rewrites,
                      "reverse", (json_int_t) row->cnt.reverse,
                      "first", json_time(row->cnt.first), "last", json_time(row->cnt.last),
                      "last_reverse", json_time(row->cnt.rlast),
                      "legacy_1d", (json_int_t) row->legacy1,
                      "legacy_7d", (json_int_t) row->legacy7,
                      "reverse_7d", (json_int_t) row->reverse7);
        if (o != NULL && row->why != NULL)
            json_object_set_new(o, "why", json_string(row->why));
        if (o == NULL || json_array_append_new(users, o) < 0)
            rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < r->nwaves; i++) {
        const struct wave_total *w = &r->waves[i];
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "wave", w->wave,
                              "unmigrated", (json_int_t) w->users[REP_UNMIGRATED],
                              "scheduled", (json_int_t) w->users[REP_SCHEDULED],
                              "migrated", (json_int_t) w->users[REP_MIGRATED],
                              "removed", (json_int_t) w->users[REP_REMOVED],
                              "legacy_1d", (json_int_t) w->legacy1,
                              "legacy_7d", (json_int_t) w->legacy7);

        if (o == NULL || json_array_append_new(waves, o) < 0)
            rc = -1;
    }
    if (rc == 0) {
        json_object_set_new(top, "counters_db", json_string(r->counters_path));
        json_object_set_new(top, "other_hosts", json_string(r->hosts));
        json_object_set_new(top, "counting_since", json_time(r->since));
        json_object_set_new(top, "last_flush", json_time(r->flushed));
        json_object_set_new(top, "users", users);
        json_object_set_new(top, "waves", waves);
        json_object_set_new(top, "legacy", json_pack("{s:I, s:I, s:I, s:I}",
                            "last_1d", (json_int_t) r->legacy1,
                            "last_7d", (json_int_t) r->legacy7,
                            "reverse_1d", (json_int_t) r->reverse1,
                            "reverse_7d", (json_int_t) r->reverse7));
        users = waves = NULL;
        rc = json_dumpf(top, r->c->out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', r->c->out);
    }
    json_decref(users);
    json_decref(waves);
    json_decref(top);
    return rc;
}

/* parse_options - --format, --idle, --since into R. EX_OK or EX_USAGE. */
static int parse_options(struct report *r, const char *format)
{
    struct ctl *c = r->c;

    if (strcmp(format, "text") && strcmp(format, "csv") && strcmp(format, "json")) {
        fprintf(c->err, "coexistctl: bad --format '%s' (text, csv or json)\n", format);
        return EX_USAGE;
    }
    if (c->opt_idle) {
        char *end;
        unsigned long days;

        errno = 0;
        days = strtoul(c->opt_idle, &end, 10);
        if (errno || end == c->opt_idle || *end || c->opt_idle[0] == '-' || days < 1
            || days > 3650) {
            fprintf(c->err, "coexistctl: bad --idle '%s' (a number of days, 1 to 3650)\n",
                    c->opt_idle);
            return EX_USAGE;
        }
        r->idle_before = c->now - (time_t) days * 86400;
    }
    if (c->opt_since) {
        const char *why;

        if (timefmt_parse(c->opt_since, &r->since_opt, &why) < 0) {
            fprintf(c->err, "coexistctl: bad --since '%s': %s\n", c->opt_since, why);
            return EX_USAGE;
        }
    }
    return EX_OK;
}

int ctl_report(struct ctl *c, int nargs, char **args)
{
    const char *format = c->opt_format ? c->opt_format : "text";
    struct report r;
    int rc;

    (void) nargs;
    (void) args;
    memset(&r, 0, sizeof(r));
    r.c = c;
    r.today = counters_day_of(c->now);
    if ((rc = parse_options(&r, format)) != EX_OK)
        return rc;
    if (store_traverse(c->st, visit_record, &r.recs) < 0)
        rc = ctl_store_fail(c);
    if (rc == EX_OK)
        rc = load_counters(&r);
    if (rc == EX_OK && (join(&r) < 0 || totals(&r) < 0)) {
        fprintf(c->err, "coexistctl: report: out of memory\n");
        rc = EX_OSERR;
    }
    if (rc == EX_OK) {
        if (strcmp(format, "text") == 0)
            print_text(&r);
        else if (strcmp(format, "csv") == 0)
            print_csv(&r);
        else if (print_json(&r) < 0)
            rc = EX_SOFTWARE;
        if (rc == EX_OK && strcmp(format, "csv") == 0)
            last_line(&r, c->err);      /* the signal, off the data stream */
    }
    list_free(&r.recs, 1);
    list_free(&r.cnts, 1);
    list_free(&r.rows, 0);
    free(r.waves);
    return rc == EX_OK && ferror(c->out) ? EX_IOERR : rc;
}
