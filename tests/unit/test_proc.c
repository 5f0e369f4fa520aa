/* test_proc.c: child processes on the loop: exit codes, signals, timeouts
 * that kill the whole group, output caps, environment and working dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "proc.h"

#define TEST_DEADLINE_S 20

struct run {
	struct event_base *base;
	int done;
	int in_start; /* set while proc_start runs: the callback must not see it */
	int cb_in_start;
	struct proc_result res;
	char *out;
	char *err;
};

static void
on_done(const struct proc_result *res, void *arg)
{
	struct run *r = arg;

	r->done++;
	r->cb_in_start = r->in_start;
	r->res = *res;
	r->out = strdup(res->out);
	r->err = strdup(res->err);
	r->res.out = r->out;
	r->res.err = r->err;
	event_base_loopbreak(r->base);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_base_loopbreak(arg);
}

static double
now_s(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* run_child: runs opts to completion (or the test deadline) and returns the
 * seconds it took. */
static double
run_child(struct run *r, struct proc_opts *opts)
{
	char err[CANARY_ERRLEN];
	struct event *dl;
	struct timeval tv = {TEST_DEADLINE_S, 0};
	double t0 = now_s();
	int rv;

	memset(r, 0, sizeof(*r));
	r->base = event_base_new();
	assert_non_null(r->base);
	dl = evtimer_new(r->base, on_deadline, r->base);
	assert_int_equal(evtimer_add(dl, &tv), 0);
	r->in_start = 1;
	rv = proc_start(r->base, opts, on_done, r, NULL, err, sizeof(err));
	r->in_start = 0;
	assert_int_equal(rv, 0);
	assert_int_equal(r->done, 0);
	event_base_dispatch(r->base);
	assert_int_equal(r->done, 1);
	assert_int_equal(r->cb_in_start, 0);
	event_free(dl);
	event_base_free(r->base);
	return now_s() - t0;
}

static void
run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static void
test_exit_code_and_streams(void **state)
{
	const char *argv[] = {"sh", "-c", "echo to-out; echo to-err >&2; exit 3", NULL};
	struct proc_opts o = {.argv = argv};
	struct run r;

	(void)state;
	run_child(&r, &o);
	assert_int_equal(r.res.exited, 1);
	assert_int_equal(r.res.exit_code, 3);
	assert_int_equal(r.res.signal, 0);
	assert_int_equal(r.res.timed_out, 0);
	assert_string_equal(r.res.out, "to-out\n");
	assert_int_equal(r.res.out_len, 7);
	assert_string_equal(r.res.err, "to-err\n");
	assert_int_equal(r.res.out_truncated, 0);
	run_free(&r);
}

static void
test_exit_zero_no_output(void **state)
{
	const char *argv[] = {"true", NULL};
	struct proc_opts o = {.argv = argv};
	struct run r;

	(void)state;
	run_child(&r, &o);
	assert_int_equal(r.res.exited, 1);
	assert_int_equal(r.res.exit_code, 0);
	assert_int_equal(r.res.out_len, 0);
	assert_string_equal(r.res.out, "");
	run_free(&r);
}

static void
test_killed_by_signal(void **state)
{
	const char *argv[] = {"sh", "-c", "kill -USR1 $$; sleep 5", NULL};
	struct proc_opts o = {.argv = argv};
	struct run r;

	(void)state;
	run_child(&r, &o);
	assert_int_equal(r.res.exited, 0);
	assert_int_equal(r.res.signal, SIGUSR1);
	assert_int_equal(r.res.timed_out, 0);
	run_free(&r);
}

/* gone: the process no longer runs (absent, or a zombie nobody reaped yet
 * because PID 1 of a container may not reap orphans). */
static int
gone(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	char *p;
	int zombie = 0;

	if (kill(pid, 0) != 0 && errno == ESRCH) {
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL) {
		return 1;
	}
	if (fgets(buf, sizeof(buf), f) != NULL) {
		p = strrchr(buf, ')');
		zombie = p != NULL && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
	}
	fclose(f);
	return zombie;
}

static void
test_timeout_kills_group(void **state)
{
	char pidfile[] = "/tmp/canary-spawn-XXXXXX";
	char script[512];
	const char *argv[] = {"sh", "-c", script, NULL};
	struct proc_opts o = {.argv = argv, .timeout_ms = 300, .kill_grace_ms = 500};
	struct run r;
	FILE *f;
	int fd, grandchild = 0;
	double took;

	(void)state;
	fd = mkstemp(pidfile);
	assert_true(fd >= 0);
	close(fd);
	/* A grandchild in the background and the shell itself both sleep. */
	snprintf(script, sizeof(script), "sleep 30 & echo $! > %s; sleep 30", pidfile);
	took = run_child(&r, &o);
	assert_int_equal(r.res.timed_out, 1);
	assert_int_equal(r.res.exited, 0);
	assert_int_equal(r.res.signal, SIGTERM);
	assert_true(took < 5.0);
	f = fopen(pidfile, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &grandchild), 1);
	fclose(f);
	unlink(pidfile);
	assert_true(grandchild > 0);
	/* SIGTERM reached the group: give the kernel a moment to deliver. */
	for (int i = 0; i < 100 && !gone(grandchild); i++) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	assert_true(gone(grandchild));
	run_free(&r);
}

static void
test_timeout_sigkill_after_grace(void **state)
{
	/* A child that ignores SIGTERM gets SIGKILL after the grace. */
	const char *argv[] = {"sh", "-c", "trap '' TERM; echo ready; sleep 30; sleep 30", NULL};
	struct proc_opts o = {.argv = argv, .timeout_ms = 200, .kill_grace_ms = 300};
	struct run r;
	double took;

	(void)state;
	took = run_child(&r, &o);
	assert_int_equal(r.res.timed_out, 1);
	assert_int_equal(r.res.signal, SIGKILL);
	assert_true(took >= 0.45);
	assert_true(took < 5.0);
	assert_string_equal(r.res.out, "ready\n");
	run_free(&r);
}

static void
test_output_cap(void **state)
{
	/* 200 KB on stdout, 1000 bytes kept; the child must not block on a
	 * full pipe and must exit 0. */
	const char *argv[] = {"sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x; echo e >&2",
	                      NULL};
	struct proc_opts o = {.argv = argv, .max_output = 1000};
	struct run r;

	(void)state;
	run_child(&r, &o);
	assert_int_equal(r.res.exited, 1);
	assert_int_equal(r.res.exit_code, 0);
	assert_int_equal(r.res.out_len, 1000);
	assert_int_equal(strlen(r.res.out), 1000);
	assert_int_equal(r.res.out_truncated, 1);
	assert_int_equal(r.res.out[999], 'x');
	assert_string_equal(r.res.err, "e\n");
	assert_int_equal(r.res.err_truncated, 0);
	run_free(&r);
}

static void
test_env_and_cwd(void **state)
{
	const char *argv[] = {"sh", "-c", "echo \"$CANARY_T1 $CANARY_T2\"; pwd", NULL};
	const char *env[] = {"CANARY_T1=extra", NULL};
	struct proc_opts o = {.argv = argv, .env = env, .cwd = "/"};
	struct run r;

	(void)state;
	/* An extra entry replaces the inherited one; others are inherited. */
	setenv("CANARY_T1", "inherited", 1);
	setenv("CANARY_T2", "kept", 1);
	run_child(&r, &o);
	assert_string_equal(r.res.out, "extra kept\n/\n");
	unsetenv("CANARY_T1");
	unsetenv("CANARY_T2");
	run_free(&r);
}

static void
test_no_inherited_descriptors(void **state)
{
	const char *argv[] = {
	    "sh", "-c", "if [ -e /proc/$$/fd/57 ]; then echo open; else echo closed; fi", NULL};
	struct proc_opts o = {.argv = argv, .timeout_ms = 5000};
	struct run r;
	int fd, high;

	(void)state;
	/* A descriptor without close-on-exec, as a library may leave one. */
	fd = open("/dev/null", O_RDONLY);
	assert_true(fd >= 0);
	high = fcntl(fd, F_DUPFD, 57);
	assert_int_equal(high, 57);
	close(fd);
	run_child(&r, &o);
	close(high);
	assert_string_equal(r.res.out, "closed\n");
	run_free(&r);
}

static void
test_stdin_is_null(void **state)
{
	/* A prompt must read EOF at once, never wait on the controller. */
	const char *argv[] = {"sh", "-c", "if read x; then echo got; else echo eof; fi", NULL};
	struct proc_opts o = {.argv = argv, .timeout_ms = 5000};
	struct run r;

	(void)state;
	run_child(&r, &o);
	assert_string_equal(r.res.out, "eof\n");
	assert_int_equal(r.res.timed_out, 0);
	run_free(&r);
}

static void
test_not_found_and_bad_args(void **state)
{
	struct event_base *base = event_base_new();
	const char *argv[] = {"canary-no-such-command-xyz", NULL};
	const char *empty[] = {NULL};
	const char *argv_ok[] = {"true", NULL};
	const char *bad_env[] = {"NOEQUALS", NULL};
	struct proc_opts o = {.argv = argv};
	struct run r;
	char err[CANARY_ERRLEN];

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(proc_start(base, &o, on_done, &r, NULL, err, sizeof(err)), CANARY_ESPAWN);
	assert_non_null(strstr(err, "canary-no-such-command-xyz"));
	o.argv = empty;
	assert_int_equal(proc_start(base, &o, on_done, &r, NULL, err, sizeof(err)), CANARY_EINVAL);
	o.argv = argv_ok;
	o.env = bad_env;
	assert_int_equal(proc_start(base, &o, on_done, &r, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "KEY=VALUE"));
	o.env = NULL;
	o.cwd = "/no/such/dir/canary";
	assert_int_equal(proc_start(base, &o, on_done, &r, NULL, err, sizeof(err)), CANARY_ESPAWN);
	assert_non_null(strstr(err, "/no/such/dir/canary"));
	/* A cap the buffer arithmetic cannot hold is refused, not wrapped. */
	o.cwd = NULL;
	o.max_output = SIZE_MAX;
	assert_int_equal(proc_start(base, &o, on_done, &r, NULL, err, sizeof(err)), CANARY_EINVAL);
	assert_non_null(strstr(err, "max_output"));
	assert_int_equal(r.done, 0);
	event_base_free(base);
}

static void
test_cancel(void **state)
{
	struct event_base *base = event_base_new();
	const char *argv[] = {"sleep", "30", NULL};
	struct proc_opts o = {.argv = argv};
	struct proc *s = NULL;
	struct run r;
	char err[CANARY_ERRLEN];
	double t0 = now_s();

	(void)state;
	memset(&r, 0, sizeof(r));
	r.base = base;
	assert_int_equal(proc_start(base, &o, on_done, &r, &s, err, sizeof(err)), 0);
	assert_non_null(s);
	event_base_loop(base, EVLOOP_NONBLOCK);
	proc_cancel(s);
	proc_cancel(NULL);
	assert_true(now_s() - t0 < 5.0);
	/* Nothing left registered, no callback. */
	assert_int_equal(event_base_dispatch(base), 1);
	assert_int_equal(r.done, 0);
	event_base_free(base);
}

static void
test_strip_ansi(void **state)
{
	/* wrangler's real stderr line, colour codes and all. */
	char s[] = "\x1b[31m\xe2\x9c\x98 \x1b[41;31m[\x1b[41;97mERROR\x1b[41;31m]\x1b[0m "
	           "\x1b[1mA request failed.\x1b[0m\n  \x1b[4mhttps://x\x1b[0m\x1b]8;;u\a!";
	char plain[] = "no escapes";
	size_t n;

	(void)state;
	n = proc_strip_ansi(s);
	assert_string_equal(s, "\xe2\x9c\x98 [ERROR] A request failed.\n  https://x!");
	assert_int_equal(n, strlen(s));
	assert_int_equal(proc_strip_ansi(plain), strlen("no escapes"));
	assert_string_equal(plain, "no escapes");
}

static void
test_tail_lines(void **state)
{
	char dst[64];

	(void)state;
	proc_tail_lines("a\n\n  b  \n\nc\nd\n\n", 3, dst, sizeof(dst));
	assert_string_equal(dst, "b\nc\nd");
	proc_tail_lines("only", 5, dst, sizeof(dst));
	assert_string_equal(dst, "only");
	proc_tail_lines("\n \n", 5, dst, sizeof(dst));
	assert_string_equal(dst, "");
	proc_tail_lines("aaaaaaaaaa\nbbbbbbbbbb", 2, dst, 8);
	assert_string_equal(dst, "aaaaaaa");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exit_code_and_streams),
	    cmocka_unit_test(test_exit_zero_no_output),
	    cmocka_unit_test(test_killed_by_signal),
	    cmocka_unit_test(test_timeout_kills_group),
	    cmocka_unit_test(test_timeout_sigkill_after_grace),
	    cmocka_unit_test(test_output_cap),
	    cmocka_unit_test(test_env_and_cwd),
	    cmocka_unit_test(test_stdin_is_null),
	    cmocka_unit_test(test_no_inherited_descriptors),
	    cmocka_unit_test(test_not_found_and_bad_args),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_strip_ansi),
	    cmocka_unit_test(test_tail_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
