/*
 * mbedlink-native: the firmware as a Linux process behind a PTY.
 *
 *   mbedlink-native [--die-with-parent] [--store PATH]
 *
 * Prints the PTY slave path (e.g. /dev/pts/3) as the first stdout line, then
 * sends the boot event and serves the protocol like a board. --store PATH:
 * key slots live in that file (created when missing); without it they are
 * volatile (RAM). SIGTERM/SIGINT:
 * clean exit (0; 3 when the heap leaked). SIGUSR1: simulated board reset.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "app/ml_core.h"
#include "hal_native.h"

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t reset_requested;

static void on_signal(int sig)
{
    if (sig == SIGUSR1) {
        reset_requested = 1;
    } else {
        stop_requested = 1;
    }
}

static int open_pty(int *slave_fd, char *path, size_t path_len)
{
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, path, path_len) != 0) {
        return -1;
    }
    /* Keep a slave fd open ourselves: the host can close and reopen the
     * port without the master seeing a hang-up. */
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

static void discard_input(int fd)
{
    uint8_t buf[4096];
    (void)tcflush(fd, TCIFLUSH);
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--die-with-parent") == 0) {
            if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
                perror("mbedlink-native: prctl");
                return 1;
            }
            if (getppid() == 1) {
                return 0; /* the parent is already gone */
            }
        } else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc) {
            const char *store = argv[++i];
            if (hal_native_store_open(store) != 0) {
                fprintf(stderr, "mbedlink-native: --store %s: %s\n", store, strerror(errno));
                return 1;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s [--die-with-parent] [--store PATH]\n", argv[0]);
            return 0;
        } else {
            fprintf(stderr, "mbedlink-native: unknown option %s\n", argv[i]);
            return 2;
        }
    }

    /* Signals are blocked except inside ppoll(): no race with the flags. */
    sigset_t blocked, during_poll;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGUSR1);
    sigprocmask(SIG_BLOCK, &blocked, &during_poll);
    sigdelset(&during_poll, SIGTERM);
    sigdelset(&during_poll, SIGINT);
    sigdelset(&during_poll, SIGUSR1);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char path[128];
    int slave = -1;
    int master = open_pty(&slave, path, sizeof path);
    if (master < 0) {
        perror("mbedlink-native: pty");
        return 1;
    }
    hal_native_set_fd(master);
    printf("%s\n", path);
    fflush(stdout);

    int ret = ml_core_init();
    if (ret != 0) {
        fprintf(stderr, "mbedlink-native: core init failed (-0x%04x)\n", (unsigned)-ret);
        return 1;
    }

    uint8_t buf[4096];
    while (!stop_requested) {
        if (reset_requested) {
            reset_requested = 0;
            discard_input(master);
            ret = ml_core_reboot();
            if (ret != 0) {
                fprintf(stderr, "mbedlink-native: reboot failed (-0x%04x)\n", (unsigned)-ret);
            }
            continue;
        }
        struct pollfd p = {.fd = master, .events = POLLIN};
        int n = ppoll(&p, 1, NULL, &during_poll);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("mbedlink-native: ppoll");
            break;
        }
        if (p.revents & POLLIN) {
            ssize_t got = read(master, buf, sizeof buf);
            if (got > 0) {
                ml_core_rx(buf, (size_t)got);
            }
        } else if (p.revents & (POLLHUP | POLLERR)) {
            /* Cannot happen while we hold the slave open; avoid spinning. */
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }

    size_t leaked = ml_core_deinit();
    close(slave);
    close(master);
    if (leaked != 0) {
        fprintf(stderr, "mbedlink-native: heap leak: %zu bytes still allocated at exit\n", leaked);
        return 3;
    }
    return 0;
}
