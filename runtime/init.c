/* pid 1 of the container: reaps every process that ends up as its child,
 * forwards signals to the payload, answers the root emulation's seccomp
 * notifications, and exits with the payload's status (128+N for a signal).
 * Its exit takes every other process of the pid namespace with it. */
#include "runtime/internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

const int init_forwarded_signals[] = {
    SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGTERM, SIGCONT, SIGWINCH, 0,
};

_Noreturn void init_loop(struct run_plan *p, pid_t payload, int sigfd)
{
    int listener = p->emu.listener >= 0 ? p->emu.listener : -1;
    for (;;) {
        struct pollfd fds[2] = {{.fd = sigfd, .events = POLLIN},
                                {.fd = listener, .events = POLLIN}};
        int n = poll(fds, listener >= 0 ? 2 : 1, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            _exit(KILN_EXIT_RUN_FAILED);
        }
        if (listener >= 0 && fds[1].revents) {
            if (fds[1].revents & POLLIN) {
                if (rootemu_serve(&p->emu) < 0) {
                    close(listener);
                    listener = -1;
                }
            } else if (fds[1].revents & (POLLHUP | POLLERR | POLLNVAL)) {
                /* every filtered process is gone */
                close(listener);
                listener = -1;
            }
        }
        if (!(fds[0].revents & POLLIN))
            continue;
        struct signalfd_siginfo si;
        if (read(sigfd, &si, sizeof(si)) != sizeof(si))
            continue;
        if (si.ssi_signo != SIGCHLD) {
            kill(payload, (int)si.ssi_signo);
            continue;
        }
        int status;
        pid_t w;
        while ((w = waitpid(-1, &status, WNOHANG)) > 0) {
            if (w != payload)
                continue;
            if (WIFEXITED(status))
                _exit(WEXITSTATUS(status));
            if (WIFSIGNALED(status))
                _exit(128 + WTERMSIG(status));
        }
    }
}
