/*
 * test_wave.c - unit tests of policy/ctl/ctl_wave.c: on the local store, a
 * wave larger than one commit is changed in parts of BACKEND_TDB_PART records.
 *
 * Covers: the wave is changed whole and says in how many commits; history
 * shows it as one wave change (a "begun" and a "done" note on !wave/W with
 * every record's entry between them); a wave that fits in one commit is
 * one change as before (no notes); a reader that looks at the wave's
 * records under one read lock while the wave runs in another process -- as
 * the milter looks up a message's recipients -- only ever sees whole parts
 * in key order (the migrated users are a prefix of the sorted keys and a
 * multiple of the part size), and does see the wave mid-way, so the parts
 * really are separate commits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "backend.h"
#include "ctl.h"
#include "store.h"

#define WAVE_USERS (BACKEND_TDB_PART * 12 + 345)   /* 13 commits, the last short */

struct fx {
    char dir[64], conf[128], db[128], csv[128];
    char *out, *err;
    size_t out_len, err_len;
    unsigned nlogs;
};

static void quiet_log(const char *message, void *ctx)
{
    (void) message;
    ((struct fx *) ctx)->nlogs++;
}

/* ctl - coexistctl -c CONF ARGS... in this process; its exit code. */
static int ctl(struct fx *fx, const char *a1, const char *a2, const char *a3)
{
    char *argv[8] = {(char *) "coexistctl", (char *) "-c", fx->conf};
    int argc = 3, rc;
    FILE *out, *err;

    argv[argc++] = (char *) a1;
    if (a2)
        argv[argc++] = (char *) a2;
    if (a3)
        argv[argc++] = (char *) a3;
    argv[argc] = NULL;
    fx->nlogs = 0;
    free(fx->out);
    free(fx->err);
    out = open_memstream(&fx->out, &fx->out_len);
    err = open_memstream(&fx->err, &fx->err_len);
    assert_non_null(out);
    assert_non_null(err);
    rc = ctl_main(argc, argv, out, err, quiet_log, fx);
    fclose(out);
    fclose(err);
    return rc;
}

#define OK(fx, a1, a2, a3) do { \
        int rc_ = ctl((fx), (a1), (a2), (a3)); \
        if (rc_ != EX_OK) \
            fail_msg("coexistctl %s %s: exit %d\n%s%s", (a1), (a2) ? (a2) : "", rc_, \
                     (fx)->out, (fx)->err); \
    } while (0)

/* key_of - user I's address; sorted order of these is the order of I's digits. */
static void key_of(unsigned i, char *buf, size_t len)
{
    snprintf(buf, len, "u%06u@corp.example", i);
}

/* make_store - N users in wave "big", and 3 more in wave "small". */
static void make_store(struct fx *fx, unsigned n)
{
    FILE *fp = fopen(fx->csv, "w");

    assert_non_null(fp);
    fprintf(fp, "address,alias,mode,state,wave,cutover\n");
    for (unsigned i = 0; i < n; i++)
        fprintf(fp, "u%06u@corp.example,u%06u@pop.example,bcc,unmigrated,big,\n", i, i);
    for (unsigned i = 0; i < 3; i++)
        fprintf(fp, "s%u@corp.example,s%u@pop.example,bcc,unmigrated,small,\n", i, i);
    assert_int_equal(fclose(fp), 0);
    OK(fx, "init", NULL, NULL);
    OK(fx, "import", fx->csv, NULL);
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    FILE *fp;

    if (fx == NULL)
        return -1;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_wave.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    snprintf(fx->db, sizeof(fx->db), "%s/state.tdb", fx->dir);
    snprintf(fx->conf, sizeof(fx->conf), "%s/coexist-milter.conf", fx->dir);
    snprintf(fx->csv, sizeof(fx->csv), "%s/users.csv", fx->dir);
    if ((fp = fopen(fx->conf, "w")) == NULL)
        return -1;
    fprintf(fp, "state_db = %s\nhash_size = 20011\n", fx->db);
    fclose(fp);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    DIR *d = opendir(fx->dir);
    struct dirent *de;

    while (d != NULL && (de = readdir(d)) != NULL) {
        char p[512];

        snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
        if (de->d_name[0] != '.')
            unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(fx->dir);
    free(fx->out);
    free(fx->err);
    free(fx);
    return 0;
}

/* count_migrated - users of the big wave migrated now, in ST. */
static unsigned count_migrated(struct store *st, unsigned n)
{
    unsigned migrated = 0;
    char key[64];
    struct record rec;

    for (unsigned i = 0; i < n; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(store_get(st, key, &rec), 1);
        migrated += rec.state == STATE_MIGRATED;
    }
    return migrated;
}

/* The wave is changed whole, in parts, and history shows one wave change. */
static void test_wave_in_parts_is_one_change(void **state)
{
    struct fx *fx = *state;
    char err[STORE_ERR_MAX], want[128];
    struct store *st;
    const char *done, *begun, *first_entry;

    make_store(fx, WAVE_USERS);
    OK(fx, "migrate", "--wave", "big");
    snprintf(want, sizeof(want), "migrate: %u records changed in 13 commits\n", WAVE_USERS);
    assert_string_equal(fx->out, want);
    /* one syslog line per record, and one for the wave */
    assert_int_equal(fx->nlogs, WAVE_USERS + 1);
    st = store_open(fx->db, STORE_OPEN_EXISTING, 0, err);
    assert_non_null(st);
    assert_int_equal(count_migrated(st, WAVE_USERS), WAVE_USERS);
    store_close(st);

    /* newest first: done note, the records, the begun note, then the import */
    OK(fx, "history", "--limit", "100000");
    done = strstr(fx->out, "!wave/big\n    old: -\n    new: migrate done: ");
    begun = strstr(fx->out, "!wave/big\n    old: -\n    new: migrate begun: ");
    first_entry = strstr(fx->out, "u000000@corp.example\n");
    assert_non_null(done);
    assert_non_null(begun);
    assert_non_null(first_entry);
    assert_true(done < first_entry && first_entry < begun);
    snprintf(want, sizeof(want), "migrate done: %u records in 13 commits\n", WAVE_USERS);
    assert_non_null(strstr(done, want));
    OK(fx, "history", "u006789@corp.example", NULL);
    assert_non_null(strstr(fx->out, "state=migrated"));

    /* and back, the same way */
    OK(fx, "unmigrate", "--wave", "big");
    snprintf(want, sizeof(want), "unmigrate: %u records changed in 13 commits\n", WAVE_USERS);
    assert_string_equal(fx->out, want);
}

/* A wave that fits in one commit is one change, as it always was: no notes. */
static void test_small_wave_is_one_commit(void **state)
{
    struct fx *fx = *state;

    make_store(fx, 10);
    OK(fx, "migrate", "--wave", "small");
    assert_string_equal(fx->out, "migrate: 3 records changed\n");
    OK(fx, "history", NULL, NULL);
    assert_null(strstr(fx->out, "!wave/"));
}

/*
 * A reader in another process, looking at all the wave's records under one
 * read lock (as the milter does for a message's recipients), sees whole
 * parts in key order only, and sees the wave mid-way at least once.
 */
static void test_reader_sees_whole_parts_in_order(void **state)
{
    struct fx *fx = *state;
    char err[STORE_ERR_MAX];
    unsigned looks = 0, midway = 0, last = 0;
    struct store *st;
    pid_t pid;
    int status;

    make_store(fx, WAVE_USERS);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct fx child = *fx;

        child.out = child.err = NULL;
        _exit(ctl(&child, "migrate", "--wave", "big"));
    }
    st = store_open(fx->db, STORE_OPEN_EXISTING, 0, err);
    assert_non_null(st);
    for (;;) {
        unsigned migrated, prefix = 0;
        char key[64];
        struct record rec;
        int running = waitpid(pid, &status, WNOHANG) == 0;

        assert_int_equal(store_read_lock(st), 0);
        migrated = count_migrated(st, WAVE_USERS);
        /* the migrated ones are the first MIGRATED keys in sorted order */
        for (unsigned i = 0; i < WAVE_USERS; i++) {
            key_of(i, key, sizeof(key));
            assert_int_equal(store_get(st, key, &rec), 1);
            if (rec.state != STATE_MIGRATED)
                break;
            prefix++;
        }
        store_read_unlock(st);
        looks++;
        if (prefix != migrated)
            fail_msg("look %u: %u migrated but only the first %u keys", looks, migrated, prefix);
        if (migrated % BACKEND_TDB_PART != 0 && migrated != WAVE_USERS)
            fail_msg("look %u: %u migrated: a part seen half applied", looks, migrated);
        if (migrated < last)
            fail_msg("look %u: %u migrated after %u", looks, migrated, last);
        last = migrated;
        midway += migrated > 0 && migrated < WAVE_USERS;
        if (!running)
            break;
        /* Mail comes with gaps: fcntl read locks taken back to back would
         * starve the writer's commit (Linux queues no writer before them). */
        usleep(2000);
    }
    store_close(st);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), EX_OK);
    assert_int_equal(last, WAVE_USERS);
    /* the parts are separate commits: a reader sees the wave between them */
    if (midway == 0)
        fail_msg("%u looks, none saw the wave mid-way: one commit?", looks);
    print_message("%u looks at the wave, %u of them mid-way\n", looks, midway);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wave_in_parts_is_one_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_wave_is_one_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_sees_whole_parts_in_order, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
