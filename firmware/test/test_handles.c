/* The handle table: generations, limits, types, zeroisation, reset. */
#include <string.h>

#include "app/ml_core.h"
#include "core/ml_config.h"
#include "core/ml_handles.h"
#include "core/protocol_ids.h"
#include "test_hal.h"
#include "test_util.h"

static bool call_ok(const char *hex)
{
    struct th_reply r;
    return th_call_parse_hex(hex, &r) && !r.is_event && r.status == 0;
}

static void expect_status(const char *hex, uint64_t status, const char *msg)
{
    struct th_reply r;
    if (th_call_parse_hex(hex, &r)) {
        CHECK_EQ(r.status, status);
        if (msg != NULL && strcmp(msg, r.msg) != 0) {
            fprintf(stderr, "  message \"%s\", expected \"%s\"\n", r.msg, msg);
            ml_test_fail(__FILE__, __LINE__, "message");
        }
    }
}

ML_TEST(generation_bump)
{
    th_boot();
    CHECK(call_ok("84 01 10 01 04"));
    struct ml_handle_ref ref, ref2;
    CHECK(ml_handle_ref(1, &ref) == 0);
    CHECK(ml_handle_ref_get(&ref) != NULL);
    CHECK(call_ok("83 02 03 01"));
    CHECK(ml_handle_ref_get(&ref) == NULL);
    CHECK(ml_handle_ref(1, &ref2) == -1);
    /* the next object takes the same slot with the next generation */
    CHECK(call_ok("84 03 10 02 04"));
    CHECK(ml_handle_ref(2, &ref2) == 0);
    CHECK_EQ(ref2.slot, ref.slot);
    CHECK_EQ(ref2.generation, ref.generation + 1);
    CHECK(ml_handle_ref_get(&ref) == NULL);
    CHECK(ml_handle_ref_get(&ref2) != NULL);
    CHECK(call_ok("83 04 03 02"));
}

ML_TEST(table_full_and_recovery)
{
    char req[64];
    th_boot();
    for (unsigned h = 1; h <= ML_CFG_MAX_HANDLES; h++) {
        snprintf(req, sizeof req, "84 01 10 19 %04x 04", h);
        CHECK(call_ok(req));
    }
    CHECK_EQ(ml_handles_used(), ML_CFG_MAX_HANDLES);
    snprintf(req, sizeof req, "84 02 10 19 %04x 04", ML_CFG_MAX_HANDLES + 1);
    char msg[64];
    snprintf(msg, sizeof msg, "all %u handles are in use", ML_CFG_MAX_HANDLES);
    expect_status(req, ML_STATUS_TOO_MANY_HANDLES, msg);
    expect_status("84 03 13 01 19 ffff", ML_STATUS_TOO_MANY_HANDLES, msg); /* hash_copy too */
    CHECK(call_ok("83 04 03 05"));
    snprintf(req, sizeof req, "84 06 10 19 %04x 04", ML_CFG_MAX_HANDLES + 1); /* a new id: not a resend */
    CHECK(call_ok(req));
    for (unsigned h = 1; h <= ML_CFG_MAX_HANDLES + 1; h++) {
        if (h != 5) {
            snprintf(req, sizeof req, "83 05 03 19 %04x", h);
            CHECK(call_ok(req));
        }
    }
    CHECK_EQ(ml_handles_used(), 0);
}

ML_TEST(wrong_type_and_bad_handle)
{
    th_boot();
    struct ml_call call;
    memset(&call, 0, sizeof call);
    void *obj = NULL;
    CHECK(ml_handle_create(&call, 5, 99, 16, NULL, &obj) == ML_STATUS_OK && obj != NULL);
    expect_status("84 01 11 05 41 00", ML_STATUS_WRONG_HANDLE_TYPE, "handle 5 is not a digest context");
    expect_status("83 02 12 05", ML_STATUS_WRONG_HANDLE_TYPE, "handle 5 is not a digest context");
    expect_status("84 03 13 05 06", ML_STATUS_WRONG_HANDLE_TYPE, "handle 5 is not a digest context");
    expect_status("84 04 10 05 04", ML_STATUS_HANDLE_IN_USE, "handle 5 is already live");
    expect_status("83 05 03 09", ML_STATUS_BAD_HANDLE, "handle 9 is not live");
    expect_status("84 06 11 09 41 00", ML_STATUS_BAD_HANDLE, "handle 9 is not live");
    CHECK(call_ok("83 07 03 05")); /* free takes any type */
    expect_status("83 08 03 05", ML_STATUS_BAD_HANDLE, "handle 5 is not live");
}

static size_t hook_calls;
static size_t hook_nonzero;
static size_t hook_size;

static void check_zero(const void *obj, size_t size)
{
    const uint8_t *p = obj;
    hook_calls++;
    hook_size = size;
    for (size_t i = 0; i < size; i++) {
        hook_nonzero += p[i] != 0;
    }
}

ML_TEST(zeroised_on_free)
{
    th_boot();
    hook_calls = hook_nonzero = hook_size = 0;
    ml_handle_free_hook = check_zero;
    CHECK(call_ok("84 01 10 03 06"));
    CHECK(call_ok("84 02 11 03 43 616263"));
    CHECK(call_ok("84 03 13 03 04"));
    CHECK(call_ok("83 04 03 03"));
    CHECK(call_ok("83 05 03 04"));
    ml_handle_free_hook = NULL;
    CHECK_EQ(hook_calls, 2);
    CHECK(hook_size > 0);
    CHECK_EQ(hook_nonzero, 0);
}

ML_TEST(reboot_frees_everything)
{
    th_boot();
    uint8_t old_id[8];
    memcpy(old_id, ml_core_boot_id(), 8);
    CHECK(call_ok("84 01 10 01 04"));
    CHECK(call_ok("84 02 10 02 0b"));
    CHECK_EQ(ml_handles_used(), 2);
    th_clear();
    CHECK(ml_core_reboot() == 0);
    CHECK_EQ(ml_handles_used(), 0);
    CHECK_EQ(th_frame_count(), 1);
    uint8_t ev[32];
    size_t n = th_frame(0, ev, sizeof ev);
    CHECK(n == 12 && ev[0] == 0x83 && ev[1] == 0xf6 && ev[2] == 0x01 && ev[3] == 0x48);
    CHECK(memcmp(ev + 4, ml_core_boot_id(), 8) == 0);
    CHECK(memcmp(old_id, ml_core_boot_id(), 8) != 0);
    expect_status("83 03 12 01", ML_STATUS_BAD_HANDLE, "handle 1 is not live");
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {
        ML_CASE(generation_bump),  ML_CASE(table_full_and_recovery), ML_CASE(wrong_type_and_bad_handle),
        ML_CASE(zeroised_on_free), ML_CASE(reboot_frees_everything),
    };
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
