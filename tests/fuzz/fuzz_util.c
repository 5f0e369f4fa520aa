/*
 * fuzz_util.c: what the controller's fuzz targets share (see fuzz_util.h).
 */
#include "fuzz_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#define FUZZ_FILE_MODE 0644

void
fuzz_util_die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz: %s: %s\n", what, detail);
	abort();
}

void
fuzz_scratch_dir(const char *tmpl, char *dir, size_t len)
{
	const char *base = getenv("TMPDIR");
	struct stat st;
	int n;

	if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0) {
		base = "/dev/shm";
	} else if (base == NULL || base[0] == '\0') {
		base = "/tmp";
	}
	n = snprintf(dir, len, "%s/%s", base, tmpl);
	if (n < 0 || (size_t)n >= len) {
		fuzz_util_die(base, "scratch directory path too long");
	}
	if (mkdtemp(dir) == NULL) {
		fuzz_util_die("mkdtemp", strerror(errno));
	}
}

void
fuzz_write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[1024];
	const char *p = data;
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fuzz_util_die(name, "path too long");
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, FUZZ_FILE_MODE);
	if (fd < 0) {
		fuzz_util_die(path, strerror(errno));
	}
	while (len > 0) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			fuzz_util_die(path, strerror(errno));
		}
		p += w;
		len -= (size_t)w;
	}
	if (close(fd) != 0) {
		fuzz_util_die(path, strerror(errno));
	}
}

int
fuzz_one_json_value(const char *text, size_t len)
{
	const char *end = NULL;
	cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	size_t pos;

	if (v == NULL) {
		return 0;
	}
	cJSON_Delete(v);
	for (pos = (size_t)(end - text); pos < len; pos++) {
		if (text[pos] != ' ' && text[pos] != '\t' && text[pos] != '\n' &&
		    text[pos] != '\r') {
			return 0;
		}
	}
	return 1;
}

static void
fuzz_op_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct fuzz_op_run *r = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(r->base);
}

void
fuzz_op_init(struct fuzz_op_run *r, struct event_base *base)
{
	memset(r, 0, sizeof(*r));
	r->base = base;
	r->deadline = base != NULL ? evtimer_new(base, fuzz_op_on_deadline, r) : NULL;
	if (r->deadline == NULL) {
		fuzz_util_die("libevent", "no event base or timer");
	}
}

void
fuzz_op_reset(struct fuzz_op_run *r, struct deployment *want, const char *version)
{
	r->calls = 0;
	memset(&r->res, 0, sizeof(r->res));
	memset(want, 0, sizeof(*want));
	snprintf(want->versions[0].version_id, sizeof(want->versions[0].version_id), "%s", version);
	want->versions[0].percentage = 100;
	want->n_versions = 1;
}

void
fuzz_op_done(const struct deployer_result *res, void *arg)
{
	struct fuzz_op_run *r = arg;

	if (r->starting) {
		fuzz_util_die("callback", "ran inside the starting call");
	}
	r->calls++;
	r->res = *res;
	event_base_loopbreak(r->base);
}

void
fuzz_op_wait(struct fuzz_op_run *r, int deadline_s)
{
	struct timeval deadline = {deadline_s, 0};

	evtimer_add(r->deadline, &deadline);
	event_base_dispatch(r->base);
	evtimer_del(r->deadline);
	if (r->calls != 1) {
		fuzz_util_die("callback", "did not run once before the deadline");
	}
}

void
fuzz_op_free(struct fuzz_op_run *r)
{
	if (r->deadline != NULL) {
		event_free(r->deadline);
		r->deadline = NULL;
	}
}
