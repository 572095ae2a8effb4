/*
 * mbedlink's Mbed TLS 3.6 configuration (selected with
 * -DMBEDTLS_CONFIG_FILE="mbedlink_config.h"; replaces mbedtls_config.h).
 *
 * One file for every target (native Linux, STM32F4, ESP32): legacy crypto
 * APIs for the ops, PSA only underneath TLS 1.3, no OS services. Everything
 * later protocol modules need (hmac, cipher, pk, mpi, x509, tls) is enabled
 * now so this file stays settled; the linker's --gc-sections drops what a
 * build does not call.
 */
#ifndef MBEDLINK_CONFIG_H
#define MBEDLINK_CONFIG_H

/* ------------------------------------------------------------ platform */
#define MBEDTLS_HAVE_ASM
#define MBEDTLS_PLATFORM_C
/* All Mbed TLS memory comes from one static buffer (firmware/src/ml_heap.c),
 * so usage is bounded and reportable; MEMORY_DEBUG gives cur/max stats. */
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_MEMORY_BUFFER_ALLOC_C
#define MBEDTLS_MEMORY_DEBUG
/* Time goes through hooks: mbedtls_ms_time() is defined by the core from the
 * HAL's millisecond counter; mbedtls_time() can be set with
 * mbedtls_platform_set_time() (defaults to time()). */
#define MBEDTLS_HAVE_TIME
#define MBEDTLS_HAVE_TIME_DATE
#define MBEDTLS_PLATFORM_MS_TIME_ALT
#define MBEDTLS_PLATFORM_TIME_ALT

/* ------------------------------------------------------------ entropy */
/* No OS entropy: the core's mbedtls_hardware_poll() asks the HAL. */
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_ENTROPY_HARDWARE_ALT
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C
#define MBEDTLS_HMAC_DRBG_C

/* Explicitly off: MBEDTLS_NET_C, MBEDTLS_TIMING_C, MBEDTLS_FS_IO,
 * MBEDTLS_THREADING_C, MBEDTLS_USE_PSA_CRYPTO (the ops keep the legacy
 * APIs), MBEDTLS_PSA_ITS_FILE_C, MBEDTLS_PSA_CRYPTO_STORAGE_C, MBEDTLS_DEBUG_C,
 * MBEDTLS_AESNI_C, MBEDTLS_AESCE_C, MBEDTLS_PADLOCK_C, MBEDTLS_SELF_TEST. */

/* ------------------------------------------------------------ PSA */
/* Only for TLS 1.3, whose key schedule (HKDF), transcript hashes and key
 * shares Mbed TLS 3.6 runs through PSA (docs/tls-design.md). PSA draws its
 * random numbers from the device DRBG (mbedtls_psa_external_get_random in
 * core/ml_rng.c: hello seeds and rng_reseed reach it, no second
 * entropy/DRBG pair in RAM); app/ml_core.c calls psa_crypto_init at boot
 * and mbedtls_psa_crypto_free before the heap goes. Its PSA_WANT_* follow
 * from the legacy modules below (no MBEDTLS_PSA_CRYPTO_CONFIG). Key slots:
 * a static table (no MBEDTLS_PSA_KEY_STORE_DYNAMIC); a TLS 1.3 handshake
 * holds one or two PSA keys at a time, their material on the heap. */
#define MBEDTLS_PSA_CRYPTO_C
#define MBEDTLS_PSA_CRYPTO_EXTERNAL_RNG
#define MBEDTLS_PSA_KEY_SLOT_COUNT 16

/* ------------------------------------------------------------ digests */
#define MBEDTLS_MD_C
#define MBEDTLS_MD5_C
#define MBEDTLS_SHA1_C
#define MBEDTLS_SHA224_C
#define MBEDTLS_SHA256_C
#define MBEDTLS_SHA384_C
#define MBEDTLS_SHA512_C
#define MBEDTLS_RIPEMD160_C
#define MBEDTLS_SHA3_C
#define MBEDTLS_HKDF_C

/* ------------------------------------------------------------ ciphers */
#define MBEDTLS_CIPHER_C
#define MBEDTLS_AES_C
#define MBEDTLS_AES_ROM_TABLES /* T-tables in flash, not ~8 KiB of RAM */
#define MBEDTLS_CIPHER_MODE_CBC
#define MBEDTLS_CIPHER_MODE_CFB
#define MBEDTLS_CIPHER_MODE_CTR
#define MBEDTLS_CIPHER_MODE_OFB
#define MBEDTLS_CIPHER_MODE_XTS
#define MBEDTLS_CIPHER_PADDING_PKCS7
#define MBEDTLS_CIPHER_PADDING_ONE_AND_ZEROS
#define MBEDTLS_CIPHER_PADDING_ZEROS_AND_LEN
#define MBEDTLS_CIPHER_PADDING_ZEROS
#define MBEDTLS_GCM_C
#define MBEDTLS_CCM_C
#define MBEDTLS_ARIA_C
#define MBEDTLS_CAMELLIA_C
#define MBEDTLS_DES_C
#define MBEDTLS_CHACHA20_C
#define MBEDTLS_POLY1305_C
#define MBEDTLS_CHACHAPOLY_C
#define MBEDTLS_CMAC_C    /* AES and DES-EDE3 CMAC (cmac module; 3.6 has no Camellia/ARIA CMAC) */
#define MBEDTLS_NIST_KW_C /* RFC 3394/5649 key wrap (keywrap module) */

/* ------------------------------------------------------------ public key */
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_GENPRIME
#define MBEDTLS_RSA_C
#define MBEDTLS_PKCS1_V15
#define MBEDTLS_PKCS1_V21
#define MBEDTLS_DHM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP192R1_ENABLED
#define MBEDTLS_ECP_DP_SECP224R1_ENABLED
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_SECP384R1_ENABLED
#define MBEDTLS_ECP_DP_SECP521R1_ENABLED
#define MBEDTLS_ECP_DP_SECP192K1_ENABLED
#define MBEDTLS_ECP_DP_SECP224K1_ENABLED
#define MBEDTLS_ECP_DP_SECP256K1_ENABLED
#define MBEDTLS_ECP_DP_BP256R1_ENABLED
#define MBEDTLS_ECP_DP_BP384R1_ENABLED
#define MBEDTLS_ECP_DP_BP512R1_ENABLED
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED
#define MBEDTLS_ECP_DP_CURVE448_ENABLED
#define MBEDTLS_ECP_NIST_OPTIM
#define MBEDTLS_ECDSA_C
#define MBEDTLS_ECDSA_DETERMINISTIC
#define MBEDTLS_ECDH_C

#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_BASE64_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_PEM_WRITE_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PK_WRITE_C
#define MBEDTLS_PK_PARSE_EC_EXTENDED
#define MBEDTLS_PK_PARSE_EC_COMPRESSED
#define MBEDTLS_PKCS5_C /* encrypted PKCS#8 keys */

/* ------------------------------------------------------------ X.509 */
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C
#define MBEDTLS_X509_CRL_PARSE_C
#define MBEDTLS_X509_CSR_PARSE_C
#define MBEDTLS_X509_CREATE_C
#define MBEDTLS_X509_CRT_WRITE_C
#define MBEDTLS_X509_CSR_WRITE_C
#define MBEDTLS_X509_RSASSA_PSS_SUPPORT

/* ------------------------------------------------------------ TLS 1.2/1.3, DTLS 1.2 */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_CLI_C
#define MBEDTLS_SSL_SRV_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_SSL_PROTO_DTLS
#define MBEDTLS_SSL_DTLS_ANTI_REPLAY
#define MBEDTLS_SSL_DTLS_HELLO_VERIFY
#define MBEDTLS_SSL_DTLS_CLIENT_PORT_REUSE
#define MBEDTLS_SSL_DTLS_CONNECTION_ID /* RFC 9146 (extension 54; MBEDTLS_SSL_DTLS_CONNECTION_ID_COMPAT stays 0) */
#define MBEDTLS_SSL_COOKIE_C
#define MBEDTLS_SSL_ENCRYPT_THEN_MAC
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
#define MBEDTLS_SSL_MAX_FRAGMENT_LENGTH
#define MBEDTLS_SSL_ALPN
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE
#define MBEDTLS_SSL_ALL_ALERT_MESSAGES
#define MBEDTLS_KEY_EXCHANGE_PSK_ENABLED
#define MBEDTLS_KEY_EXCHANGE_DHE_PSK_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_PSK_ENABLED
#define MBEDTLS_KEY_EXCHANGE_RSA_PSK_ENABLED
#define MBEDTLS_KEY_EXCHANGE_RSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_DHE_RSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_RSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDH_ECDSA_ENABLED
#define MBEDTLS_KEY_EXCHANGE_ECDH_RSA_ENABLED
/* TLS 1.3 (DTLS stays 1.2: mbedtls_ssl_config_defaults caps a datagram
 * configuration at 1.2, and a DTLS configuration must never raise it). */
#define MBEDTLS_SSL_PROTO_TLS1_3
#define MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE /* what OpenSSL and Node send too */
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_ENABLED
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_PSK_EPHEMERAL_ENABLED
/* Resumption: TLS 1.3 tickets and TLS 1.2 tickets (RFC 5077); a TLS 1.3
 * client sees tickets only with
 * mbedtls_ssl_conf_tls13_enable_signal_new_session_tickets (3.6.1+). No
 * MBEDTLS_SSL_CACHE_C (a server-side cache holds peer certificates in the
 * heap), no MBEDTLS_SSL_EARLY_DATA, no MBEDTLS_SSL_RENEGOTIATION. */
#define MBEDTLS_SSL_SESSION_TICKETS
#define MBEDTLS_SSL_TICKET_C
/* Record buffers (docs/tls-design.md §3). Input: a whole 16 KiB record, the
 * size default OpenSSL and Node peers send (TLS 1.3 has no way for Mbed TLS
 * 3.6 to ask a peer for less: it sends no max_fragment_length in 1.3, and
 * OpenSSL 3.0 ignores record_size_limit). Output: 4 KiB records, which
 * every peer takes; this saves 12 KiB of heap per session. The same on
 * every target: the CMake build compiles Mbed TLS without the target's
 * defines, so a per-target value would silently differ between the
 * library and the ops. */
#define MBEDTLS_SSL_IN_CONTENT_LEN 16384
#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096
#define MBEDTLS_SSL_DTLS_MAX_BUFFERING 8192

/* ------------------------------------------------------------ misc */
#define MBEDTLS_ERROR_C
#define MBEDTLS_VERSION_C

#endif /* MBEDLINK_CONFIG_H */
