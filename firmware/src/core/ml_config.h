/* Compile-time limits of a target (set per target in firmware/sources.json). */
#ifndef ML_CONFIG_H
#define ML_CONFIG_H

#ifndef ML_CFG_MTU
#define ML_CFG_MTU 1024 /* largest frame body (CBOR + CRC) received or sent */
#endif
#ifndef ML_CFG_WINDOW
#define ML_CFG_WINDOW 4 /* requests the host may keep in flight */
#endif
#ifndef ML_CFG_MAX_HANDLES
#define ML_CFG_MAX_HANDLES 16 /* handle table slots */
#endif
#ifndef ML_CFG_HEAP_SIZE
#define ML_CFG_HEAP_SIZE 65536 /* bytes of the static Mbed TLS heap */
#endif
#ifndef ML_FW_VERSION
#define ML_FW_VERSION "0.0.0"
#endif

#endif /* ML_CONFIG_H */
