/*
 * The newlib system calls the link needs; no semihosting, no console.
 * Full newlib, not newlib-nano: the core formats error messages with %llu /
 * PRIu64, which Debian's newlib-nano printf does not implement (it prints
 * "lu"); the full printf costs ~28 KB of flash, which we have.
 * newlib's malloc is never used (Mbed TLS allocates from ml_heap.c's static
 * buffer), so _sbrk always fails.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "hal/ml_hal.h"
#include "stm32f4.h"

void *_sbrk(ptrdiff_t incr);
void *_sbrk(ptrdiff_t incr)
{
    (void)incr;
    errno = ENOMEM;
    return (void *)-1;
}

/* time(): newlib's, seconds since boot counted from 1970-01-01. Mbed TLS
 * does not read it: its mbedtls_time is the core's device clock
 * (core/ml_clock.c, installed with mbedtls_platform_set_time at boot), which
 * the host sets with time_set and the millisecond counter keeps. */
int _gettimeofday(struct timeval *tv, void *tz);
int _gettimeofday(struct timeval *tv, void *tz)
{
    (void)tz;
    if (tv != NULL) {
        uint64_t ms = ml_hal_millis();
        tv->tv_sec = (time_t)(ms / 1000u);
        tv->tv_usec = (suseconds_t)((ms % 1000u) * 1000u);
    }
    return 0;
}

/* abort() -> raise() -> _kill(_getpid(), SIGABRT): reset, as for a fault. */
int _getpid(void);
int _getpid(void) { return 1; }

int _kill(int pid, int sig);
int _kill(int pid, int sig)
{
    (void)pid;
    stm32_fatal(0xE1000000u | ((uint32_t)sig & 0xFFu));
}

void _exit(int status) __attribute__((noreturn));
void _exit(int status) { stm32_fatal(0xE0000000u | ((uint32_t)status & 0xFFFFu)); }

/* newlib's stdio/reent layer is linked (snprintf shares code with it) but
 * there are no files: every descriptor is invalid. */
struct stat;
int _write(int fd, const void *buf, size_t len);
int _write(int fd, const void *buf, size_t len)
{
    (void)fd;
    (void)buf;
    (void)len;
    errno = EBADF;
    return -1;
}

int _read(int fd, void *buf, size_t len);
int _read(int fd, void *buf, size_t len)
{
    (void)fd;
    (void)buf;
    (void)len;
    errno = EBADF;
    return -1;
}

int _close(int fd);
int _close(int fd)
{
    (void)fd;
    errno = EBADF;
    return -1;
}

long _lseek(int fd, long offset, int whence);
long _lseek(int fd, long offset, int whence)
{
    (void)fd;
    (void)offset;
    (void)whence;
    errno = EBADF;
    return -1;
}

int _fstat(int fd, struct stat *st);
int _fstat(int fd, struct stat *st)
{
    (void)fd;
    (void)st;
    errno = EBADF;
    return -1;
}

int _isatty(int fd);
int _isatty(int fd)
{
    (void)fd;
    errno = EBADF;
    return 0;
}
