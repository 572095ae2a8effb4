/* The static Mbed TLS heap (MBEDTLS_MEMORY_BUFFER_ALLOC_C). */
#ifndef ML_HEAP_H
#define ML_HEAP_H

#include <stddef.h>

struct ml_heap_stats {
    size_t size;   /* bytes in the buffer */
    size_t used;   /* payload bytes allocated now */
    size_t peak;   /* most payload bytes allocated at once since init */
    size_t blocks; /* allocated blocks now */
};

/* (Re)initialises the heap: everything allocated before is forgotten. */
void ml_heap_init(void);
void ml_heap_deinit(void);
void ml_heap_get_stats(struct ml_heap_stats *s);

#endif /* ML_HEAP_H */
