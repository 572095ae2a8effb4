#include "test_util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "test_hal.h"

static int failures;

void ml_test_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what);
    failures++;
}

static int run_case(const struct ml_test_case *c)
{
    int before = failures;
    c->fn();
    if (th_running()) {
        th_shutdown(); /* includes the leak check */
    }
    bool ok = failures == before;
    printf("%s %s\n", ok ? "PASS" : "FAIL", c->name);
    return ok ? 0 : 1;
}

int ml_test_main(int argc, char **argv, const struct ml_test_case *cases, size_t count)
{
    int bad = 0;
    if (argc > 1) {
        for (size_t i = 0; i < count; i++) {
            if (strcmp(cases[i].name, argv[1]) == 0) {
                return run_case(&cases[i]);
            }
        }
        fprintf(stderr, "no test case named %s\n", argv[1]);
        return 2;
    }
    for (size_t i = 0; i < count; i++) {
        bad += run_case(&cases[i]);
    }
    return bad == 0 ? 0 : 1;
}

size_t ml_unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int half = -1;
    for (const char *p = hex; *p != '\0'; p++) {
        if (isspace((unsigned char)*p)) {
            continue;
        }
        int v = isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10;
        if (half < 0) {
            half = v;
        } else {
            if (n >= cap) {
                abort();
            }
            out[n++] = (uint8_t)(half << 4 | v);
            half = -1;
        }
    }
    return n;
}

void ml_print_hex(const char *label, const uint8_t *data, size_t len)
{
    fprintf(stderr, "  %s (%zu):", label, len);
    for (size_t i = 0; i < len; i++) {
        fprintf(stderr, "%02x", data[i]);
    }
    fprintf(stderr, "\n");
}
