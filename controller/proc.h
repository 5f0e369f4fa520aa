/*
 * proc.h: run one child process on a libevent loop, never through a shell.
 *
 * The child is started with posix_spawnp() from an argv (argv[0] looked up in
 * PATH), in a process group of its own, with its stdin on /dev/null, its
 * stdout and stderr on pipes that the loop reads without blocking, and no
 * other descriptor of ours (all from 3 up are closed in the child). Each
 * stream keeps at most max_output bytes (the rest is read and dropped, so a
 * chatty child never blocks on a full pipe). A timeout sends SIGTERM to the
 * whole group, then SIGKILL after a grace period, so grandchildren (a shell
 * script's `sleep`, node's workers) die too.
 *
 * Reaping: the child is watched through a pidfd (pidfd_open, Linux >= 5.3)
 * registered on the loop, which becomes readable when the child exits; where
 * pidfd_open is missing, a timer polls waitpid(WNOHANG) every
 * PROC_POLL_MS. No SIGCHLD handler is installed, so the module does not
 * compete with other users of signals in the process. waitpid() is only ever
 * called for this child's pid, never with -1.
 *
 * Completion: once the child is reaped and both pipes are at EOF (or
 * PROC_DRAIN_MS after the reap, when a grandchild still holds a pipe: the
 * group is then killed), the callback runs once on the loop thread, never
 * from inside proc_start().
 *
 * Threads: everything runs on the loop thread of the event_base given.
 */
#ifndef CANARY_PROC_H
#define CANARY_PROC_H

#include <stddef.h>

#include <event2/event.h>

#define PROC_MAX_OUTPUT_DEFAULT (1024 * 1024)       /* bytes kept per stream */
#define PROC_MAX_OUTPUT_CEILING (256 * 1024 * 1024) /* the largest max_output taken */
#define PROC_KILL_GRACE_MS      2000                /* SIGTERM -> SIGKILL */
#define PROC_DRAIN_MS           1000                /* pipes still open after the reap */
#define PROC_POLL_MS            20                  /* waitpid poll when there is no pidfd */
#define PROC_READ_CHUNK         16384
#define PROC_MAX_ARGS           256
#define PROC_MAX_ENV            4096 /* entries in environ plus the extra ones */
#define PROC_MAX_TAIL_LINES     64   /* proc_tail_lines keeps at most this many */

struct proc_opts {
	const char *const *argv; /* NULL-terminated, argv[0] is looked up in PATH */
	/* Extra "KEY=VALUE" entries, NULL-terminated, may be NULL. They replace
	 * entries of the same KEY in the process environment, which the child
	 * otherwise inherits whole. Never logged. */
	const char *const *env;
	const char *cwd;   /* working directory of the child; NULL: ours */
	int timeout_ms;    /* 0: no timeout */
	int kill_grace_ms; /* 0: PROC_KILL_GRACE_MS */
	size_t max_output; /* per stream; 0: PROC_MAX_OUTPUT_DEFAULT; at most
	                    * PROC_MAX_OUTPUT_CEILING */
};

struct proc_result {
	int pid;
	int exited;    /* 1: exited normally with exit_code */
	int exit_code; /* valid when exited */
	int signal;    /* the signal that ended it, 0 when exited */
	int timed_out; /* 1: the timeout fired and the group was killed */
	/* Captured output, NUL-terminated (the NUL is not counted in *_len).
	 * Owned by the proc module; valid only during the callback. */
	const char *out;
	size_t out_len;
	int out_truncated; /* 1: more than max_output bytes were written */
	const char *err;
	size_t err_len;
	int err_truncated;
};

struct proc;

/* Called once on the loop thread when the child is done. The struct proc is
 * freed right after the callback returns; do not call proc_cancel() on it
 * from here. */
typedef void (*proc_cb)(const struct proc_result *res, void *arg);

/* proc_start: starts the child. Returns 0 (cb will run later; *sp is a
 * handle valid until cb returns or proc_cancel) or CANARY_EINVAL (bad
 * options), CANARY_ENOMEM, CANARY_ESPAWN (pipes, posix_spawnp: e.g. command
 * not found), with a message naming argv[0] in err. sp may be NULL when the
 * caller never cancels. */
int proc_start(struct event_base *base, const struct proc_opts *opts, proc_cb cb, void *arg,
               struct proc **sp, char *err, size_t errlen);

/* proc_cancel: kills the child's process group with SIGKILL, reaps it
 * (blocking for the few milliseconds that takes), and frees s. The callback
 * does not run. Accepts NULL. */
void proc_cancel(struct proc *s);

/* proc_strip_ansi: removes ANSI escape sequences (CSI such as colour codes
 * "\x1b[31m", OSC, two-byte escapes) from the NUL-terminated s in place.
 * Returns the new length. */
size_t proc_strip_ansi(char *s);

/* proc_tail_lines: copies into dst (size dstlen, always NUL-terminated) the
 * last max_lines (at most PROC_MAX_TAIL_LINES) non-blank lines of src, each trimmed of surrounding
 * whitespace and joined with "\n": the useful end of a child's stderr. */
void proc_tail_lines(const char *src, int max_lines, char *dst, size_t dstlen);

#endif /* CANARY_PROC_H */
