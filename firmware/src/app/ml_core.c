#include "app/ml_core.h"

#include <string.h>
#if defined(MBEDTLS_PSA_CRYPTO_C)
#include <mbedtls/error.h>
#include <psa/crypto.h>
#endif

#include "core/ml_clock.h"
#include "core/ml_device.h"
#include "core/ml_handles.h"
#include "core/ml_heap.h"
#include "core/ml_rng.h"
#include "hal/ml_hal.h"
#include "link/ml_link.h"
#include "store/ml_keystore.h"

int ml_core_init(void)
{
    ml_heap_init();
    ml_device.oom_answers = 0; /* the heap's counters start again too */
    ml_handles_init();
    ml_clock_init(); /* 1970 until the host sets it (time_set) */
    ml_link_init(ml_hal_board()->mtu);
    /* A medium failure leaves the slots answering storage_error; the rest serves. */
    (void)ml_keystore_init();
    int ret = ml_rng_init();
    if (ret == 0) {
        ret = ml_rng_random(NULL, ml_device.boot_id, sizeof ml_device.boot_id);
    }
#if defined(MBEDTLS_PSA_CRYPTO_C)
    /* PSA serves TLS 1.3 (HKDF key schedule, key shares); its random
     * numbers come from the DRBG seeded above (ml_rng.c). */
    if (ret == 0 && psa_crypto_init() != PSA_SUCCESS) {
        ret = MBEDTLS_ERR_ERROR_GENERIC_ERROR;
    }
#endif
    if (ret != 0) {
        memset(ml_device.boot_id, 0, sizeof ml_device.boot_id);
    }
    ml_link_send_boot_event(ml_device.boot_id);
    return ret;
}

void ml_core_rx(const uint8_t *data, size_t len) { ml_link_rx(data, len); }

size_t ml_core_deinit(void)
{
    ml_handles_free_all();
#if defined(MBEDTLS_PSA_CRYPTO_C)
    mbedtls_psa_crypto_free(); /* its key slots and their heap blocks */
#endif
    ml_rng_free();
    struct ml_heap_stats hs;
    ml_heap_get_stats(&hs);
    ml_heap_deinit();
    return hs.used;
}

int ml_core_reboot(void)
{
    (void)ml_core_deinit();
    return ml_core_init();
}

const uint8_t *ml_core_boot_id(void) { return ml_device.boot_id; }
