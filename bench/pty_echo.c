/*
 * pty_echo: the trivial peer behind a PTY that `npm run bench` measures the
 * raw link with (the floor the mbedlink protocol sits on).
 *
 *   pty_echo [--die-with-parent] [--sink ACK_HEX]
 *
 * Opens a PTY like the native firmware does (raw mode, the slave held open,
 * master non-blocking), prints the slave path as the first stdout line, then
 *   (default)     writes every byte it reads straight back;
 *   --sink HEX    discards what it reads and answers every SLIP frame (an END
 *                 byte after at least one other byte) with the given bytes,
 *                 e.g. a small pre-encoded response frame.
 * Exits on SIGTERM/SIGINT or when its parent dies (--die-with-parent).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define SLIP_END 0xC0u

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int open_pty(int *slave_fd, char *path, size_t path_len)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, path, path_len) != 0) {
        return -1;
    }
    int slave = open(path, O_RDWR | O_NOCTTY);
    if (slave < 0) {
        return -1;
    }
    struct termios tio;
    if (tcgetattr(slave, &tio) != 0) {
        return -1;
    }
    cfmakeraw(&tio);
    if (tcsetattr(slave, TCSANOW, &tio) != 0) {
        return -1;
    }
    int flags = fcntl(master, F_GETFL);
    if (flags < 0 || fcntl(master, F_SETFL, flags | O_NONBLOCK) != 0) {
        return -1;
    }
    *slave_fd = slave;
    return master;
}

/* Writes all of data, waiting for POLLOUT when the PTY is full. */
static int write_all(int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 1000) < 0 && errno != EINTR) {
            return -1;
        }
        if (stop_requested) {
            return -1;
        }
    }
    return 0;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static size_t parse_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > cap) {
        return 0;
    }
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return 0;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return n / 2;
}

int main(int argc, char **argv)
{
    static uint8_t ack[1024];
    size_t ack_len = 0;
    int sink = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--die-with-parent") == 0) {
            if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() == 1) {
                return 1;
            }
        } else if (strcmp(argv[i], "--sink") == 0 && i + 1 < argc) {
            sink = 1;
            ack_len = parse_hex(argv[++i], ack, sizeof ack);
            if (ack_len == 0) {
                fprintf(stderr, "pty_echo: --sink needs 1..%zu bytes as hex\n", sizeof ack);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: %s [--die-with-parent] [--sink ACK_HEX]\n", argv[0]);
            return 2;
        }
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char path[128];
    int slave = -1;
    int master = open_pty(&slave, path, sizeof path);
    if (master < 0) {
        perror("pty_echo: pty");
        return 1;
    }
    printf("%s\n", path);
    fflush(stdout);

    static uint8_t buf[65536];
    static uint8_t acks[65536];
    size_t frame_bytes = 0; /* bytes of the current frame seen (sink mode) */
    while (!stop_requested) {
        struct pollfd p = {.fd = master, .events = POLLIN};
        if (poll(&p, 1, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (!(p.revents & POLLIN)) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
            continue;
        }
        ssize_t got = read(master, buf, sizeof buf);
        if (got <= 0) {
            continue;
        }
        if (!sink) {
            if (write_all(master, buf, (size_t)got) != 0) {
                break;
            }
            continue;
        }
        size_t n = 0;
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] != SLIP_END) {
                frame_bytes++;
                continue;
            }
            if (frame_bytes == 0) {
                continue;
            }
            frame_bytes = 0;
            if (n + ack_len > sizeof acks) {
                if (write_all(master, acks, n) != 0) {
                    stop_requested = 1;
                    break;
                }
                n = 0;
            }
            memcpy(acks + n, ack, ack_len);
            n += ack_len;
        }
        if (n > 0 && write_all(master, acks, n) != 0) {
            break;
        }
    }
    close(slave);
    close(master);
    return 0;
}
