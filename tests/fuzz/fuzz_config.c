/*
 * fuzz_config.c - libFuzzer target for the configuration parser
 * (policy/config.c).
 *
 * config_load() reads a path, so the input is written to a memfd and read
 * back through /proc/self/fd/N: no file in the tree or in /tmp. Properties:
 * a rejection is one "path:line: message"; an accepted file keeps every
 * value within its key's bounds, and its config_dump is a fixed point (the
 * dump loads, and dumps to the same text).
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static int memfd = -1;
static char memfd_path[64];

/* put_file - make the memfd hold exactly LEN bytes of DATA. */
static void put_file(const void *data, size_t len)
{
    if (memfd < 0) {
        memfd = memfd_create("fuzz_config", 0);
        if (memfd < 0) {
            perror("memfd_create");
            abort();
        }
        snprintf(memfd_path, sizeof(memfd_path), "/proc/self/fd/%d", memfd);
    }
    if (ftruncate(memfd, 0) < 0 || (len > 0 && pwrite(memfd, data, len, 0) != (ssize_t) len)) {
        perror("memfd write");
        abort();
    }
}

/* dump - config_dump into a malloc'd string. */
static char *dump(const struct config *cfg, size_t *len)
{
    char *text = NULL;
    FILE *fp = open_memstream(&text, len);

    if (fp == NULL)
        abort();
    config_dump(cfg, fp);
    if (fclose(fp) != 0)
        abort();
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config cfg, again;
    char err[CONFIG_ERR_MAX], *text, *text2;
    size_t len, len2;

    put_file(data, size);
    config_defaults(&cfg);
    err[0] = '\0';
    if (config_load(&cfg, memfd_path, 0, err) < 0) {
        FUZZ_CHECK(strncmp(err, memfd_path, strlen(memfd_path)) == 0
                   && err[strlen(memfd_path)] == ':', "error '%s' does not name the file", err);
        FUZZ_CHECK(strchr(err, '\n') == NULL, "error '%s' spans lines", err);
        return 0;
    }
    FUZZ_CHECK(cfg.umask <= 0777, "umask %o", (unsigned) cfg.umask);
    FUZZ_CHECK(cfg.stats_interval <= 86400, "stats_interval %u", cfg.stats_interval);
    FUZZ_CHECK(cfg.hash_size >= 31 && cfg.hash_size <= 100000007, "hash_size %u", cfg.hash_size);
    FUZZ_CHECK(cfg.trace_header[0] != '\0' && cfg.instance[0] != '\0', "empty header/instance");
    FUZZ_CHECK(cfg.state_db[0] == '/', "state_db '%s'", cfg.state_db);
    FUZZ_CHECK(strchr(cfg.recipient_delimiter, '@') == NULL, "delimiter '%s'",
               cfg.recipient_delimiter);

    text = dump(&cfg, &len);
    put_file(text, len);
    config_defaults(&again);
    FUZZ_CHECK(config_load(&again, memfd_path, 0, err) == 0, "the dump does not load: %s\n%s",
               err, text);
    text2 = dump(&again, &len2);
    FUZZ_CHECK(len == len2 && memcmp(text, text2, len) == 0, "dump changes:\n%s---\n%s",
               text, text2);
    free(text);
    free(text2);
    return 0;
}
