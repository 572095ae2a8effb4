/* Native Linux HAL: serial = PTY master, entropy = getrandom(2). */
#include "hal_native.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/ml_config.h"
#include "hal/ml_hal.h"

/* Like a UART nobody listens to: a frame whose bytes cannot be written for
 * this long is abandoned (the rest of it is dropped and counted). */
#define WRITE_STALL_MS 1000

static int serial_fd = -1;

static const struct ml_board board = {
    .name = "native-linux",
    .entropy = "getrandom(2): Linux kernel CSPRNG",
    .mtu = ML_CFG_MTU,
    .window = ML_CFG_WINDOW,
};

void hal_native_set_fd(int fd) { serial_fd = fd; }

const struct ml_board *ml_hal_board(void) { return &board; }

bool ml_hal_serial_write(const uint8_t *data, size_t len)
{
    uint64_t stalled_since = 0;
    while (len > 0) {
        ssize_t n = write(serial_fd, data, len);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            stalled_since = 0;
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return false;
        }
        uint64_t now = ml_hal_millis();
        if (stalled_since == 0) {
            stalled_since = now;
        }
        if (now - stalled_since >= WRITE_STALL_MS) {
            return false;
        }
        struct pollfd p = {.fd = serial_fd, .events = POLLOUT};
        (void)poll(&p, 1, (int)(WRITE_STALL_MS - (now - stalled_since)));
    }
    return true;
}

int ml_hal_entropy(uint8_t *out, size_t len, size_t *olen)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom(out + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            *olen = done;
            return -1;
        }
        done += (size_t)n;
    }
    *olen = done;
    return 0;
}

uint64_t ml_hal_millis(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u + 1u;
}

void ml_hal_reset(void) { abort(); }
