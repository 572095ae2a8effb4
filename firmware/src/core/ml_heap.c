#include "core/ml_heap.h"

#include <mbedtls/memory_buffer_alloc.h>

#include "core/ml_config.h"

static _Alignas(16) unsigned char heap_buf[ML_CFG_HEAP_SIZE];

void ml_heap_init(void) { mbedtls_memory_buffer_alloc_init(heap_buf, sizeof heap_buf); }

void ml_heap_deinit(void) { mbedtls_memory_buffer_alloc_free(); }

void ml_heap_get_stats(struct ml_heap_stats *s)
{
    size_t peak_blocks = 0;
    s->size = sizeof heap_buf;
    mbedtls_memory_buffer_alloc_cur_get(&s->used, &s->blocks);
    mbedtls_memory_buffer_alloc_max_get(&s->peak, &peak_blocks);
}
