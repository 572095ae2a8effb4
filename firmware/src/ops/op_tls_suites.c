/*
 * TLS module, the cipher suites this build offers (spec.md 7.12,
 * python-mbedtls's tls.ciphers_available): Mbed TLS's list in its order of
 * preference, each as its IANA number and Mbed TLS's name, paged so that
 * one answer stays within the MTU on every target.
 */
#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ciphersuites.h>
#include <string.h>

#include "core/ml_config.h"
#include "ops/ml_ops.h"

/* CBOR bytes of one [id, name] entry besides the name: array head, id
 * (up to 3 bytes), text head (up to 2 bytes). */
#define ENTRY_OVERHEAD 6u
/* Answer bytes the paging leaves for the entries: the outer array, the
 * total and the inner array head. */
#define ANSWER_ROOM (ML_CFG_MTU - ML_REQUEST_OVERHEAD_MAX - 16u)

int ml_op_tls_ciphersuites(struct ml_call *call, CborValue *args, CborEncoder *result)
{
    uint64_t start = 0;
    int st = ML_STATUS_OK;
    ML_CHK(ml_arg_uint(call, args, 1, &start));
    const int *ids = mbedtls_ssl_list_ciphersuites();
    size_t total = 0;
    while (ids[total] != 0) {
        total++;
    }
    if (start > total) {
        ML_FAIL(call, ML_STATUS_BAD_ARGUMENT, "arg 1: start %llu is past the %lu suites", (unsigned long long)start,
                (unsigned long)total);
    }
    /* The entries from `start` that fit one answer. */
    size_t end = (size_t)start;
    size_t used = 0;
    while (end < total) {
        const char *name = mbedtls_ssl_get_ciphersuite_name(ids[end]);
        size_t need = ENTRY_OVERHEAD + strlen(name);
        if (used + need > ANSWER_ROOM) {
            break;
        }
        used += need;
        end++;
    }
    CborEncoder outer;
    CborEncoder list;
    CborError err = cbor_encoder_create_array(result, &outer, 2);
    err |= cbor_encode_uint(&outer, total);
    err |= cbor_encoder_create_array(&outer, &list, end - (size_t)start);
    for (size_t i = (size_t)start; i < end; i++) {
        CborEncoder entry;
        err |= cbor_encoder_create_array(&list, &entry, 2);
        err |= cbor_encode_uint(&entry, (uint64_t)ids[i]);
        err |= cbor_encode_text_stringz(&entry, mbedtls_ssl_get_ciphersuite_name(ids[i]));
        err |= cbor_encoder_close_container(&list, &entry);
    }
    err |= cbor_encoder_close_container(&outer, &list);
    err |= cbor_encoder_close_container(result, &outer);
    (void)err;
cleanup:
    return st;
}
