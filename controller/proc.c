/*
 * proc.c: child processes with posix_spawnp + pipes + pidfd on libevent.
 * See proc.h.
 */

/* posix_spawn_file_actions_addchdir_np, _addclosefrom_np (glibc >= 2.34),
 * pipe2 and pidfd_open are glibc/Linux extensions: the working directory must
 * be set and inherited descriptors closed between fork and exec without a
 * shell, pipes must be close-on-exec from birth (other
 * threads may spawn too), and a pidfd lets the loop watch the child without
 * a SIGCHLD handler. */
#define _GNU_SOURCE

#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"

extern char **environ;

struct proc_stream {
	struct proc *s;
	int fd; /* read end, -1 once at EOF */
	struct event *ev;
	char *buf; /* NUL-terminated, at most cap bytes kept */
	size_t len;
	size_t alloc;
	size_t cap;
	int truncated;
};

struct proc {
	struct event_base *base;
	proc_cb cb;
	void *arg;
	pid_t pid;
	int reaped;
	int status;      /* from waitpid, valid when reaped */
	int status_lost; /* reaped by someone else: status unknown */
	int timed_out;
	int kill_grace_ms;
	int pidfd;                /* -1 when polling */
	struct event *pid_ev;     /* pidfd readable, or the poll timer */
	struct event *timeout_ev; /* the deadline: SIGTERM to the group */
	struct event *kill_ev;    /* after the grace: SIGKILL to the group */
	struct event *drain_ev;   /* pipes held open past the reap */
	struct proc_stream out;
	struct proc_stream err;
};

static void
proc_ms_to_tv(int ms, struct timeval *tv)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

static void
proc_stream_close(struct proc_stream *st)
{
	if (st->ev != NULL) {
		event_free(st->ev);
		st->ev = NULL;
	}
	if (st->fd >= 0) {
		close(st->fd);
		st->fd = -1;
	}
}

static void
proc_free(struct proc *s)
{
	if (s == NULL) {
		return;
	}
	proc_stream_close(&s->out);
	proc_stream_close(&s->err);
	free(s->out.buf);
	free(s->err.buf);
	if (s->pid_ev != NULL) {
		event_free(s->pid_ev);
	}
	if (s->timeout_ev != NULL) {
		event_free(s->timeout_ev);
	}
	if (s->kill_ev != NULL) {
		event_free(s->kill_ev);
	}
	if (s->drain_ev != NULL) {
		event_free(s->drain_ev);
	}
	if (s->pidfd >= 0) {
		close(s->pidfd);
	}
	free(s);
}

/* proc_maybe_finish: runs the callback once the child is reaped and both pipes
 * are closed, then frees s. */
static void
proc_maybe_finish(struct proc *s)
{
	struct proc_result res;

	if (!s->reaped || s->out.fd >= 0 || s->err.fd >= 0) {
		return;
	}
	memset(&res, 0, sizeof(res));
	res.pid = (int)s->pid;
	/* status_lost: neither an exit code nor a signal is known. */
	if (!s->status_lost && WIFEXITED(s->status)) {
		res.exited = 1;
		res.exit_code = WEXITSTATUS(s->status);
	} else if (!s->status_lost && WIFSIGNALED(s->status)) {
		res.signal = WTERMSIG(s->status);
	}
	res.timed_out = s->timed_out;
	res.out = s->out.buf != NULL ? s->out.buf : "";
	res.out_len = s->out.len;
	res.out_truncated = s->out.truncated;
	res.err = s->err.buf != NULL ? s->err.buf : "";
	res.err_len = s->err.len;
	res.err_truncated = s->err.truncated;
	s->cb(&res, s->arg);
	proc_free(s);
}

static void
proc_kill_group(struct proc *s, int sig)
{
	/* The child leads its own group (POSIX_SPAWN_SETPGROUP, pgid 0), so
	 * -pid reaches it and everything it started. ESRCH: nobody left. */
	(void)kill(-s->pid, sig);
}

static void
proc_on_kill(evutil_socket_t fd, short what, void *arg)
{
	struct proc *s = arg;

	(void)fd;
	(void)what;
	proc_kill_group(s, SIGKILL);
}

static void
proc_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct proc *s = arg;
	struct timeval tv;

	(void)fd;
	(void)what;
	if (s->reaped) {
		return;
	}
	s->timed_out = 1;
	proc_kill_group(s, SIGTERM);
	proc_ms_to_tv(s->kill_grace_ms, &tv);
	(void)event_add(s->kill_ev, &tv);
}

static void
proc_on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct proc *s = arg;

	(void)fd;
	(void)what;
	/* The child is gone but something it started still holds a pipe: end
	 * the group and stop reading. */
	proc_kill_group(s, SIGKILL);
	proc_stream_close(&s->out);
	proc_stream_close(&s->err);
	proc_maybe_finish(s);
}

static void
proc_try_reap(struct proc *s)
{
	pid_t r;
	int status = 0;
	struct timeval tv;

	do {
		r = waitpid(s->pid, &status, WNOHANG);
	} while (r < 0 && errno == EINTR);
	if (r == 0) {
		return;
	}
	if (r < 0) {
		/* ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN?): all
		 * that is known is that it is gone. */
		s->status_lost = 1;
	} else {
		s->status = status;
	}
	s->reaped = 1;
	event_del(s->pid_ev);
	event_del(s->timeout_ev);
	event_del(s->kill_ev);
	if (s->out.fd >= 0 || s->err.fd >= 0) {
		proc_ms_to_tv(PROC_DRAIN_MS, &tv);
		(void)event_add(s->drain_ev, &tv);
		return;
	}
	proc_maybe_finish(s);
}

static void
proc_on_pid(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	proc_try_reap(arg);
}

static void
proc_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct proc_stream *st = arg;
	struct proc *s = st->s;
	char chunk[PROC_READ_CHUNK];
	ssize_t n;
	size_t keep;

	(void)what;
	n = read(fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
		return;
	}
	if (n <= 0) {
		proc_stream_close(st);
		if (s->reaped && s->out.fd < 0 && s->err.fd < 0) {
			event_del(s->drain_ev);
			proc_maybe_finish(s);
		}
		return;
	}
	keep = (size_t)n;
	if (st->len + keep > st->cap) {
		keep = st->cap - st->len;
		st->truncated = 1;
	}
	if (keep == 0) {
		return;
	}
	if (st->len + keep + 1 > st->alloc) {
		size_t want = st->alloc == 0 ? PROC_READ_CHUNK : st->alloc;
		char *nb;

		while (want < st->len + keep + 1) {
			want *= 2;
		}
		if (want > st->cap + 1) {
			want = st->cap + 1;
		}
		nb = realloc(st->buf, want);
		if (nb == NULL) {
			/* Keep what we have; the rest counts as dropped. */
			st->truncated = 1;
			return;
		}
		st->buf = nb;
		st->alloc = want;
	}
	memcpy(st->buf + st->len, chunk, keep);
	st->len += keep;
	st->buf[st->len] = '\0';
}

/* proc_build_env: environ minus the keys overridden by extra, then extra.
 * The strings stay owned by environ and the caller; only the array is
 * allocated. */
static int
proc_build_env(const char *const *extra, char ***envp, char *err, size_t errlen)
{
	size_t n_env = 0, n_extra = 0, i, j, k = 0;
	char **env;

	for (i = 0; environ != NULL && environ[i] != NULL; i++) {
		n_env++;
	}
	for (i = 0; extra != NULL && extra[i] != NULL; i++) {
		if (strchr(extra[i], '=') == NULL || extra[i][0] == '=') {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "spawn: environment entry %zu: expected KEY=VALUE", i);
		}
		n_extra++;
	}
	if (n_env + n_extra > PROC_MAX_ENV) {
		return canary_errf(err, errlen, CANARY_ETOOBIG,
		                   "spawn: %zu environment entries, at most %d", n_env + n_extra,
		                   PROC_MAX_ENV);
	}
	env = calloc(n_env + n_extra + 1, sizeof(*env));
	if (env == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "spawn: out of memory");
	}
	for (i = 0; i < n_env; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t klen = eq != NULL ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		int overridden = 0;

		for (j = 0; j < n_extra; j++) {
			if (strncmp(extra[j], environ[i], klen) == 0 && extra[j][klen] == '=') {
				overridden = 1;
				break;
			}
		}
		if (!overridden) {
			env[k++] = environ[i];
		}
	}
	for (j = 0; j < n_extra; j++) {
		env[k++] = (char *)extra[j];
	}
	env[k] = NULL;
	*envp = env;
	return 0;
}

static int
proc_stream_init(struct proc *s, struct proc_stream *st, int fd, size_t cap)
{
	st->s = s;
	st->fd = fd;
	st->cap = cap;
	if (fcntl(fd, F_SETFL, O_NONBLOCK) != 0) {
		return CANARY_ESPAWN;
	}
	st->ev = event_new(s->base, fd, EV_READ | EV_PERSIST, proc_on_read, st);
	if (st->ev == NULL || event_add(st->ev, NULL) != 0) {
		return CANARY_ENOMEM;
	}
	return 0;
}

int
proc_start(struct event_base *base, const struct proc_opts *opts, proc_cb cb, void *arg,
           struct proc **sp, char *err, size_t errlen)
{
	struct proc *s = NULL;
	int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int fa_ok = 0, attr_ok = 0;
	sigset_t mask, def;
	char **envp = NULL;
	int rv, e, nargs;
	pid_t pid;
	struct timeval tv;

	if (sp != NULL) {
		*sp = NULL;
	}
	if (base == NULL || opts == NULL || cb == NULL || opts->argv == NULL ||
	    opts->argv[0] == NULL || opts->argv[0][0] == '\0') {
		return canary_errf(err, errlen, CANARY_EINVAL, "spawn: no command given");
	}
	for (nargs = 0; opts->argv[nargs] != NULL; nargs++) {
		if (nargs >= PROC_MAX_ARGS) {
			return canary_errf(err, errlen, CANARY_ETOOBIG,
			                   "spawn: %s: more than %d arguments", opts->argv[0],
			                   PROC_MAX_ARGS);
		}
	}
	if (opts->timeout_ms < 0 || opts->kill_grace_ms < 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "spawn: %s: negative timeout or grace", opts->argv[0]);
	}
	/* The buffer arithmetic (cap + 1, doubling) must not wrap. */
	if (opts->max_output > PROC_MAX_OUTPUT_CEILING) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "spawn: %s: max_output %zu over the %d-byte ceiling",
		                   opts->argv[0], opts->max_output, PROC_MAX_OUTPUT_CEILING);
	}
	rv = proc_build_env(opts->env, &envp, err, errlen);
	if (rv != 0) {
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "spawn: out of memory");
		goto out;
	}
	s->base = base;
	s->cb = cb;
	s->arg = arg;
	s->pid = -1;
	s->pidfd = -1;
	s->out.fd = -1;
	s->err.fd = -1;
	s->kill_grace_ms = opts->kill_grace_ms > 0 ? opts->kill_grace_ms : PROC_KILL_GRACE_MS;
	if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
		rv = canary_errf(err, errlen, CANARY_ESPAWN, "spawn: %s: pipe: %s", opts->argv[0],
		                 strerror(errno));
		goto out;
	}
	if (posix_spawn_file_actions_init(&fa) != 0) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "spawn: out of memory");
		goto out;
	}
	fa_ok = 1;
	if (posix_spawnattr_init(&attr) != 0) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "spawn: out of memory");
		goto out;
	}
	attr_ok = 1;
	/* The child: stdin from /dev/null (a CLI that prompts must not wait on
	 * us), stdout/stderr into the pipes, its own process group, no blocked
	 * signals, and the signals we may ignore or catch back to default. */
	sigemptyset(&mask);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGHUP);
	sigaddset(&def, SIGQUIT);
	sigaddset(&def, SIGCHLD);
	sigaddset(&def, SIGUSR1);
	sigaddset(&def, SIGUSR2);
	sigaddset(&def, SIGALRM);
	/* Every other descriptor is closed in the child: a library's socket
	 * opened without close-on-exec (an nng listener, a libcurl
	 * connection) must not live on in a CLI that outlives us, holding a
	 * port a resumed controller needs. */
	if (posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2) != 0 ||
	    posix_spawn_file_actions_addclosefrom_np(&fa, 3) != 0 ||
	    (opts->cwd != NULL && posix_spawn_file_actions_addchdir_np(&fa, opts->cwd) != 0) ||
	    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                        POSIX_SPAWN_SETSIGDEF) != 0 ||
	    posix_spawnattr_setpgroup(&attr, 0) != 0 ||
	    posix_spawnattr_setsigmask(&attr, &mask) != 0 ||
	    posix_spawnattr_setsigdefault(&attr, &def) != 0) {
		rv = canary_errf(err, errlen, CANARY_ESPAWN, "spawn: %s: cannot set up the child",
		                 opts->argv[0]);
		goto out;
	}
	e = posix_spawnp(&pid, opts->argv[0], &fa, &attr, (char *const *)opts->argv, envp);
	if (e != 0) {
		rv = canary_errf(err, errlen, CANARY_ESPAWN, "spawn: %s%s%s: %s", opts->argv[0],
		                 opts->cwd != NULL ? " in " : "",
		                 opts->cwd != NULL ? opts->cwd : "", strerror(e));
		goto out;
	}
	s->pid = pid;
	close(out_pipe[1]);
	close(err_pipe[1]);
	out_pipe[1] = err_pipe[1] = -1;
	rv = proc_stream_init(s, &s->out, out_pipe[0],
	                      opts->max_output > 0 ? opts->max_output : PROC_MAX_OUTPUT_DEFAULT);
	out_pipe[0] = -1;
	if (rv == 0) {
		rv = proc_stream_init(s, &s->err, err_pipe[0],
		                      opts->max_output > 0 ? opts->max_output
		                                           : PROC_MAX_OUTPUT_DEFAULT);
		err_pipe[0] = -1;
	}
	if (rv != 0) {
		rv = canary_errf(err, errlen, rv, "spawn: %s: cannot watch the pipes",
		                 opts->argv[0]);
		goto out;
	}
	s->timeout_ev = evtimer_new(base, proc_on_timeout, s);
	s->kill_ev = evtimer_new(base, proc_on_kill, s);
	s->drain_ev = evtimer_new(base, proc_on_drain, s);
	s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (s->pidfd >= 0) {
		s->pid_ev = event_new(base, s->pidfd, EV_READ | EV_PERSIST, proc_on_pid, s);
		if (s->pid_ev != NULL && event_add(s->pid_ev, NULL) != 0) {
			rv = CANARY_ENOMEM;
		}
	} else {
		s->pid_ev = event_new(base, -1, EV_PERSIST, proc_on_pid, s);
		proc_ms_to_tv(PROC_POLL_MS, &tv);
		if (s->pid_ev != NULL && event_add(s->pid_ev, &tv) != 0) {
			rv = CANARY_ENOMEM;
		}
	}
	if (s->timeout_ev == NULL || s->kill_ev == NULL || s->drain_ev == NULL ||
	    s->pid_ev == NULL) {
		rv = CANARY_ENOMEM;
	}
	if (rv == 0 && opts->timeout_ms > 0) {
		proc_ms_to_tv(opts->timeout_ms, &tv);
		if (event_add(s->timeout_ev, &tv) != 0) {
			rv = CANARY_ENOMEM;
		}
	}
	if (rv != 0) {
		rv = canary_errf(err, errlen, rv, "spawn: %s: cannot watch the child",
		                 opts->argv[0]);
		goto out;
	}
	if (sp != NULL) {
		*sp = s;
	}
	s = NULL;
out:
	if (s != NULL && s->pid > 0) {
		/* Started but cannot be watched: do not leave it running. */
		proc_kill_group(s, SIGKILL);
		(void)waitpid(s->pid, NULL, 0);
	}
	proc_free(s);
	if (fa_ok) {
		posix_spawn_file_actions_destroy(&fa);
	}
	if (attr_ok) {
		posix_spawnattr_destroy(&attr);
	}
	for (int i = 0; i < 2; i++) {
		if (out_pipe[i] >= 0) {
			close(out_pipe[i]);
		}
		if (err_pipe[i] >= 0) {
			close(err_pipe[i]);
		}
	}
	free(envp);
	return rv;
}

void
proc_cancel(struct proc *s)
{
	if (s == NULL) {
		return;
	}
	if (!s->reaped && s->pid > 0) {
		proc_kill_group(s, SIGKILL);
		while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {
		}
	} else if (s->pid > 0) {
		/* Grandchildren may still hold the pipes. */
		proc_kill_group(s, SIGKILL);
	}
	proc_free(s);
}

size_t
proc_strip_ansi(char *s)
{
	char *r = s, *w = s;

	if (s == NULL) {
		return 0;
	}
	while (*r != '\0') {
		if (*r != '\x1b') {
			*w++ = *r++;
			continue;
		}
		r++;
		if (*r == '[') {
			/* CSI: parameters 0x30-0x3f, intermediates 0x20-0x2f,
			 * one final byte 0x40-0x7e. */
			r++;
			while (*r != '\0' && (unsigned char)*r >= 0x20 &&
			       (unsigned char)*r <= 0x3f) {
				r++;
			}
			if (*r != '\0' && (unsigned char)*r >= 0x40 && (unsigned char)*r <= 0x7e) {
				r++;
			}
		} else if (*r == ']') {
			/* OSC: up to BEL or ESC '\'. */
			r++;
			while (*r != '\0' && *r != '\a' && !(r[0] == '\x1b' && r[1] == '\\')) {
				r++;
			}
			if (*r == '\a') {
				r++;
			} else if (*r == '\x1b') {
				r += 2;
			}
		} else if (*r != '\0') {
			r++; /* a two-byte escape */
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static int
proc_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

void
proc_tail_lines(const char *src, int max_lines, char *dst, size_t dstlen)
{
	const char *end, *p;
	const char *starts[PROC_MAX_TAIL_LINES];
	size_t lens[PROC_MAX_TAIL_LINES];
	int n = 0, i;
	size_t w = 0;

	if (dst == NULL || dstlen == 0) {
		return;
	}
	dst[0] = '\0';
	if (src == NULL || max_lines <= 0) {
		return;
	}
	if (max_lines > PROC_MAX_TAIL_LINES) {
		max_lines = PROC_MAX_TAIL_LINES;
	}
	/* Walk backwards collecting up to max_lines non-blank lines. */
	end = src + strlen(src);
	while (end > src && n < max_lines) {
		const char *ls, *le;

		p = end;
		while (p > src && p[-1] != '\n') {
			p--;
		}
		ls = p;
		le = end;
		while (ls < le && proc_is_space(*ls)) {
			ls++;
		}
		while (le > ls && proc_is_space(le[-1])) {
			le--;
		}
		if (le > ls) {
			starts[n] = ls;
			lens[n] = (size_t)(le - ls);
			n++;
		}
		end = p > src ? p - 1 : src;
	}
	for (i = n - 1; i >= 0; i--) {
		size_t len = lens[i];

		if (w + 1 >= dstlen) {
			break;
		}
		if (i != n - 1) {
			dst[w++] = '\n';
		}
		if (len > dstlen - w - 1) {
			len = dstlen - w - 1;
		}
		memcpy(dst + w, starts[i], len);
		w += len;
	}
	dst[w] = '\0';
}
