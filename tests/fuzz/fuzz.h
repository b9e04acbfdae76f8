/*
 * fuzz.h - what the libFuzzer targets of tests/fuzz/ share: a property
 * check that crashes (so libFuzzer saves the input) and a NUL-terminated
 * copy of the fuzz bytes.
 */
#ifndef COEXIST_FUZZ_H
#define COEXIST_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FUZZ_CHECK - a property that must hold: report it and abort if not. */
#define FUZZ_CHECK(cond, ...) do { \
        if (!(cond)) { \
            fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr); \
            abort(); \
        } \
    } while (0)

/* fuzz_strndup - the bytes as a C string (up to the first NUL), heap-allocated
 * at its exact size so that ASan sees any read past its end. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
