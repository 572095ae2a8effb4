/*
 * tls_baseline: the in-process TLS baseline of `npm run bench`. A Mbed TLS
 * client and server in one process, talking through two in-memory queues,
 * built from the very library the native firmware links
 * (build/native/libml_mbedtls.a: firmware/sources.json's sources, defines and
 * mbedlink_config.h) with the firmware's allocator (a memory_buffer_alloc
 * heap) and a CTR_DRBG. The configuration is the one the device's sessions
 * get from `TLSConfiguration` in the bench: the server's certificate and P-256
 * key from PEM files, the client verifying it (it is its own trust anchor)
 * with the host name set, one version, one cipher suite, Mbed TLS's default
 * groups. Prints one JSON object: per version the median handshake time
 * (both ends' work: the setup of both contexts to both done) and the rate of
 * application data the client writes and the server reads.
 *
 *   tls_baseline CERT.pem KEY.pem HOST HANDSHAKES BULK_BYTES
 */
#include <mbedtls/memory_buffer_alloc.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_platform.h"

#define HEAP_SIZE  (1024u * 1024u)
#define QUEUE_SIZE (64u * 1024u)
#define ROUNDS_MAX 1000

static _Alignas(16) unsigned char heap[HEAP_SIZE];
static mbedtls_entropy_context entropy;

static void check(int ret, const char *what)
{
    if (ret != 0) {
        fprintf(stderr, "tls_baseline: %s failed: -0x%04x\n", what, (unsigned)-ret);
        exit(1);
    }
}

/* ------------------------------------------------------------ in-memory queues */
struct queue {
    unsigned char data[QUEUE_SIZE];
    size_t head, len;
};
struct pipe_end {
    struct queue *rx, *tx;
};

static int q_send(void *ctx, const unsigned char *buf, size_t len)
{
    struct queue *q = ((struct pipe_end *)ctx)->tx;
    if (q->head > 0) { /* compact: what is left moves to the front */
        memmove(q->data, q->data + q->head, q->len);
        q->head = 0;
    }
    size_t n = len < QUEUE_SIZE - q->len ? len : QUEUE_SIZE - q->len;
    if (n == 0) {
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    }
    memcpy(q->data + q->len, buf, n);
    q->len += n;
    return (int)n;
}

static int q_recv(void *ctx, unsigned char *buf, size_t len)
{
    struct queue *q = ((struct pipe_end *)ctx)->rx;
    size_t n = len < q->len ? len : q->len;
    if (n == 0) {
        return MBEDTLS_ERR_SSL_WANT_READ;
    }
    memcpy(buf, q->data + q->head, n);
    q->head += n;
    q->len -= n;
    if (q->len == 0) {
        q->head = 0;
    }
    return (int)n;
}

static int want(int ret) { return ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE; }

/* ------------------------------------------------------------ a run */
static mbedtls_x509_crt crt;
static mbedtls_pk_context key;
static const char *host;

static void configure(mbedtls_ssl_config *c, int server, mbedtls_ssl_protocol_version v, const int *suites)
{
    mbedtls_ssl_config_init(c);
    check(mbedtls_ssl_config_defaults(c, server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                                      MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT),
          "ssl_config_defaults");
    mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, &drbg);
    mbedtls_ssl_conf_min_tls_version(c, v);
    mbedtls_ssl_conf_max_tls_version(c, v);
    mbedtls_ssl_conf_ciphersuites(c, suites);
    if (server) {
        mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_NONE);
        check(mbedtls_ssl_conf_own_cert(c, &crt, &key), "conf_own_cert");
    } else {
        mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_ca_chain(c, &crt, NULL);
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Handshakes `rounds` times; the last session then moves `bulk` bytes client -> server. */
static void bench_version(const char *name, mbedtls_ssl_protocol_version v, int suite, int rounds, size_t bulk)
{
    static struct queue c2s, s2c;
    static unsigned char buf[16384];
    static double ms[ROUNDS_MAX];
    const int suites[] = {suite, 0};
    mbedtls_ssl_config cc, sc;
    configure(&cc, 0, v, suites);
    configure(&sc, 1, v, suites);
    struct pipe_end ce = {&s2c, &c2s}, se = {&c2s, &s2c};
    double bulk_mbps = 0;
    char suite_name[64] = "";
    for (int r = 0; r < rounds; r++) {
        mbedtls_ssl_context cli, srv;
        c2s.len = c2s.head = s2c.len = s2c.head = 0;
        double t0 = now_s();
        mbedtls_ssl_init(&cli);
        mbedtls_ssl_init(&srv);
        check(mbedtls_ssl_setup(&cli, &cc), "ssl_setup client");
        check(mbedtls_ssl_setup(&srv, &sc), "ssl_setup server");
        check(mbedtls_ssl_set_hostname(&cli, host), "set_hostname");
        mbedtls_ssl_set_bio(&cli, &ce, q_send, q_recv, NULL);
        mbedtls_ssl_set_bio(&srv, &se, q_send, q_recv, NULL);
        int cd = 0, sd = 0, ret;
        for (int i = 0; i < 1000 && !(cd && sd); i++) {
            if (!cd && (ret = mbedtls_ssl_handshake(&cli)) == 0) {
                cd = 1;
            } else if (!cd && !want(ret)) {
                check(ret, "client handshake");
            }
            if (!sd && (ret = mbedtls_ssl_handshake(&srv)) == 0) {
                sd = 1;
            } else if (!sd && !want(ret)) {
                check(ret, "server handshake");
            }
        }
        if (!(cd && sd)) {
            check(-1, "handshake to its end");
        }
        ms[r] = (now_s() - t0) * 1000.0;
        snprintf(suite_name, sizeof suite_name, "%s", mbedtls_ssl_get_ciphersuite(&cli));
        if (r == rounds - 1 && bulk > 0) {
            memset(buf, 0x5a, sizeof buf);
            size_t sent = 0, got = 0;
            double b0 = now_s();
            while (got < bulk) {
                if (sent < bulk) {
                    size_t n = bulk - sent < sizeof buf ? bulk - sent : sizeof buf;
                    ret = mbedtls_ssl_write(&cli, buf, n);
                    if (ret > 0) {
                        sent += (size_t)ret;
                    } else if (!want(ret)) {
                        check(ret, "client write");
                    }
                }
                ret = mbedtls_ssl_read(&srv, buf, sizeof buf);
                if (ret > 0) {
                    got += (size_t)ret;
                } else if (!want(ret)) {
                    check(ret, "server read");
                }
            }
            bulk_mbps = (double)bulk / (now_s() - b0) / 1e6;
        }
        (void)mbedtls_ssl_close_notify(&cli);
        mbedtls_ssl_free(&cli);
        mbedtls_ssl_free(&srv);
    }
    mbedtls_ssl_config_free(&cc);
    mbedtls_ssl_config_free(&sc);
    qsort(ms, (size_t)rounds, sizeof ms[0], cmp_double);
    printf("  \"%s\": {\"suite\": \"%s\", \"handshake_ms\": %.4f, \"handshake_ms_min\": %.4f, \"bulk_MBps\": %.4f}",
           name, suite_name, ms[rounds / 2], ms[0], bulk_mbps);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "tls_baseline: cannot open %s\n", path);
        exit(1);
    }
    unsigned char *b = NULL;
    size_t n = 0;
    for (;;) {
        unsigned char *nb = realloc(b, n + 4097);
        if (nb == NULL) {
            exit(1);
        }
        b = nb;
        size_t got = fread(b + n, 1, 4096, f);
        n += got;
        if (got < 4096) {
            break;
        }
    }
    fclose(f);
    b[n] = 0; /* PEM parsers want the NUL counted */
    *len = n + 1;
    return b;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s CERT.pem KEY.pem HOST HANDSHAKES BULK_BYTES\n", argv[0]);
        return 2;
    }
    host = argv[3];
    int rounds = atoi(argv[4]);
    size_t bulk = (size_t)strtoull(argv[5], NULL, 10);
    if (rounds < 1 || rounds > ROUNDS_MAX) {
        fprintf(stderr, "tls_baseline: HANDSHAKES from 1 to %d\n", ROUNDS_MAX);
        return 2;
    }
    mbedtls_memory_buffer_alloc_init(heap, sizeof heap);
    mbedtls_entropy_init(&entropy);
    mbedtls_ctr_drbg_init(&drbg);
    check(mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0), "ctr_drbg_seed");
    check(psa_crypto_init() == PSA_SUCCESS ? 0 : -1, "psa_crypto_init");
    mbedtls_x509_crt_init(&crt);
    mbedtls_pk_init(&key);
    size_t len;
    unsigned char *pem = read_file(argv[1], &len);
    check(mbedtls_x509_crt_parse(&crt, pem, len), "x509_crt_parse");
    free(pem);
    pem = read_file(argv[2], &len);
    check(mbedtls_pk_parse_key(&key, pem, len, NULL, 0, mbedtls_ctr_drbg_random, &drbg), "pk_parse_key");
    mbedtls_platform_zeroize(pem, len);
    free(pem);

    printf("{\n");
    bench_version("tls12", MBEDTLS_SSL_VERSION_TLS1_2, MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, rounds, bulk);
    printf(",\n");
    bench_version("tls13", MBEDTLS_SSL_VERSION_TLS1_3, MBEDTLS_TLS1_3_AES_128_GCM_SHA256, rounds, bulk);
    printf("\n}\n");

    mbedtls_pk_free(&key);
    mbedtls_x509_crt_free(&crt);
    mbedtls_psa_crypto_free();
    mbedtls_ctr_drbg_free(&drbg);
    mbedtls_entropy_free(&entropy);
    mbedtls_memory_buffer_alloc_free();
    return 0;
}
