/*
 * fuzz_util.h: what the controller's fuzz targets share: a scratch
 * directory, files written whole, the "exactly one JSON value" test, and
 * running one deployer operation to its callback.
 *
 * A fuzz target has no way to report but to stop: every helper aborts with
 * a line on stderr naming what failed.
 */
#ifndef CANARY_FUZZ_UTIL_H
#define CANARY_FUZZ_UTIL_H

#include <stddef.h>

#include <event2/event.h>

#include "deployer.h"

/* fuzz_util_die: "fuzz: WHAT: DETAIL" on stderr, then abort(). */
void fuzz_util_die(const char *what, const char *detail);

/* fuzz_scratch_dir: a new directory from tmpl ("name.XXXXXX", mkdtemp's
 * form) under /dev/shm when it is there and writable, else TMPDIR, else
 * /tmp; its path into dir (len bytes). */
void fuzz_scratch_dir(const char *tmpl, char *dir, size_t len);

/* fuzz_write_file: dir/name holds exactly data[0..len). */
void fuzz_write_file(const char *dir, const char *name, const void *data, size_t len);

/* fuzz_one_json_value: 1 when text[0..len) is one JSON value and nothing
 * but JSON whitespace after it (the spec of canary_json_parse_exact). */
int fuzz_one_json_value(const char *text, size_t len);

/* One deployer operation at a time, on base. The target sets starting to 1
 * around its start call and passes fuzz_op_done with the run as arg. */
struct fuzz_op_run {
	struct event_base *base;
	struct event *deadline; /* a hang ends the loop (and the input) */
	int starting;           /* 1 while the start function runs */
	int calls;              /* callbacks since fuzz_op_reset */
	struct deployer_result res;
};

/* fuzz_op_init: the deadline timer on base. */
void fuzz_op_init(struct fuzz_op_run *r, struct event_base *base);

/* fuzz_op_reset: no callback seen, no result; want is the deployment a
 * deploy asks for (version at 100%). */
void fuzz_op_reset(struct fuzz_op_run *r, struct deployment *want, const char *version);

/* fuzz_op_done: the deployer callback (arg: the run). It must not run
 * inside the starting call. */
void fuzz_op_done(const struct deployer_result *res, void *arg);

/* fuzz_op_wait: after a start that returned 0, runs the loop until the
 * callback or deadline_s seconds; the callback must have run exactly once. */
void fuzz_op_wait(struct fuzz_op_run *r, int deadline_s);

/* fuzz_op_free: the deadline timer (r may be all zero). */
void fuzz_op_free(struct fuzz_op_run *r);

#endif /* CANARY_FUZZ_UTIL_H */
