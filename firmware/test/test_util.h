/* A minimal test harness: each ML_TEST(name) in a file is registered by
 * CMake as its own ctest test and run as `<exe> <name>`. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define ML_TEST(name) static void name(void)
#define ML_CASE(name) \
    {                 \
#name, name   \
    }

struct ml_test_case {
    const char *name;
    void (*fn)(void);
};

void ml_test_fail(const char *file, int line, const char *what);

#define CHECK(cond)                                  \
    do {                                             \
        if (!(cond)) {                               \
            ml_test_fail(__FILE__, __LINE__, #cond); \
        }                                            \
    } while (0)

#define CHECK_EQ(a, b)                                                                 \
    do {                                                                               \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b); \
        if (a_ != b_) {                                                                \
            fprintf(stderr, "  %s = %llu, %s = %llu\n", #a, a_, #b, b_);               \
            ml_test_fail(__FILE__, __LINE__, #a " == " #b);                            \
        }                                                                              \
    } while (0)

/* Runs the case named by argv[1], or every case; returns the exit code. */
int ml_test_main(int argc, char **argv, const struct ml_test_case *cases, size_t count);

/* Hex helpers: whitespace in `hex` is ignored. Returns the byte count. */
size_t ml_unhex(const char *hex, uint8_t *out, size_t cap);
void ml_print_hex(const char *label, const uint8_t *data, size_t len);

#endif /* TEST_UTIL_H */
