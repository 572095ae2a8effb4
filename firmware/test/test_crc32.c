#include <string.h>

#include "core/ml_crc32.h"
#include "test_util.h"

ML_TEST(check_value) { CHECK_EQ(ml_crc32("123456789", 9), 0xCBF43926u); }

ML_TEST(empty) { CHECK_EQ(ml_crc32("", 0), 0); }

ML_TEST(incremental)
{
    const char *msg = "The quick brown fox jumps over the lazy dog";
    size_t len = strlen(msg);
    CHECK_EQ(ml_crc32(msg, len), 0x414FA339u);
    for (size_t split = 0; split <= len; split++) {
        uint32_t crc = ml_crc32_update(0, msg, split);
        crc = ml_crc32_update(crc, msg + split, len - split);
        CHECK_EQ(crc, 0x414FA339u);
    }
}

int main(int argc, char **argv)
{
    static const struct ml_test_case cases[] = {ML_CASE(check_value), ML_CASE(empty), ML_CASE(incremental)};
    return ml_test_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
