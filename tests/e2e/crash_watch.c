/*
 * crash_watch.c: waits for the Nth record of a type in a controller's
 * journal and, given a pid, kills that process with SIGKILL the moment the
 * record is on disk.
 *
 *   crash_watch JOURNAL TYPE N TIMEOUT_MS [PID]
 *
 * JOURNAL is the state directory's journal.jsonl (controller/journal.h);
 * it may not exist yet. TYPE is a record type ("intent", "step", ...) or
 * "*" for any record. Only complete lines (ending in "\n") count: a torn
 * last line is not a record. The file is read as it grows, woken by inotify
 * (Linux) at each write, so the kill lands tens of microseconds after the
 * record's write: before the controller's next platform call in practice,
 * but no ordering is promised (a record written without any I/O in between
 * may make it too; the tests assert outcomes that hold whatever the exact
 * moment, and e2e_lib.sh trims such records when that is equivalent).
 *
 * Prints the matching record (cut to CRASH_PRINT_MAX bytes) on stdout.
 * Exit 0: seen (and killed); 1: not seen within TIMEOUT_MS; 2: usage or I/O
 * error; 3: PID ended (or is a zombie) before the record was written.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define CRASH_POLL_US   1000
#define CRASH_TYPE_MAX  32    /* journal.h: type is [a-z_-]{1,32} */
#define CRASH_PREFIX    48    /* bytes of a line kept to read its type */
#define CRASH_PRINT_MAX 512   /* bytes of the matching line kept to print */
#define CRASH_CHUNK     65536 /* bytes read per call */
#define CRASH_WAKE_MS   20    /* with inotify: look at the pid at least this often */
#define CRASH_EVENTS    4096  /* bytes of inotify events drained per read */

struct crash_line {
	char text[CRASH_PRINT_MAX + 1];
	size_t len; /* bytes kept; the line may be longer */
};

/* crash_alive: pid runs and is not a zombie (a child of the test script
 * stays one until the script waits for it). Linux /proc. */
static int
crash_alive(pid_t pid)
{
	char path[64], buf[256];
	const char *state;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "r")) == NULL) {
		return 0;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "PID (COMM) STATE ...": COMM may hold spaces and parentheses. */
	state = strrchr(buf, ')');
	return state != NULL && state[1] == ' ' && state[2] != 'Z' && state[2] != 'X';
}

static long long
crash_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* crash_line_matches: the line starts {"type":"TYPE" (journal_append writes
 * the type first), or any line for "*". */
static int
crash_line_matches(const struct crash_line *l, const char *type)
{
	char want[CRASH_PREFIX + 1];

	if (strcmp(type, "*") == 0) {
		return 1;
	}
	snprintf(want, sizeof(want), "{\"type\":\"%s\"", type);
	return l->len >= strlen(want) && memcmp(l->text, want, strlen(want)) == 0;
}

int
main(int argc, char **argv)
{
	const char *path, *type;
	long n, timeout_ms;
	pid_t pid = 0;
	long long deadline;
	struct crash_line line = {{0}, 0};
	long seen = 0;
	int fd = -1, ifd = -1, wd = -1;
	char *buf = NULL;
	struct timespec pause = {.tv_sec = 0, .tv_nsec = CRASH_POLL_US * 1000L};
	int rc = 2;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: crash_watch JOURNAL TYPE N TIMEOUT_MS [PID]\n");
		return 2;
	}
	path = argv[1];
	type = argv[2];
	n = strtol(argv[3], NULL, 10);
	timeout_ms = strtol(argv[4], NULL, 10);
	if (argc == 6) {
		pid = (pid_t)strtol(argv[5], NULL, 10);
	}
	if (strlen(type) == 0 || strlen(type) > CRASH_TYPE_MAX || n < 1 || timeout_ms < 1 ||
	    (argc == 6 && pid <= 1)) {
		fprintf(stderr,
		        "crash_watch: bad arguments (TYPE 1..%d bytes, N >= 1, "
		        "TIMEOUT_MS >= 1, PID > 1)\n",
		        CRASH_TYPE_MAX);
		return 2;
	}
	buf = malloc(CRASH_CHUNK);
	if (buf == NULL) {
		fprintf(stderr, "crash_watch: out of memory\n");
		return 2;
	}
	/* inotify wakes the loop the moment the controller writes; without
	 * it (or before the file exists) the loop polls every CRASH_POLL_US. */
	ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	deadline = crash_now_ms() + timeout_ms;
	for (;;) {
		/* Looked at before reading: a pid found dead has written all it
		 * ever will, so a record missing from this read never comes. */
		int dead = pid > 0 && !crash_alive(pid);
		ssize_t got;

		if (fd < 0) {
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0 && errno != ENOENT) {
				fprintf(stderr, "crash_watch: %s: %s\n", path, strerror(errno));
				goto out;
			}
			if (fd >= 0 && ifd >= 0) {
				wd = inotify_add_watch(ifd, path, IN_MODIFY);
			}
		}
		while (fd >= 0 && (got = read(fd, buf, CRASH_CHUNK)) > 0) {
			for (ssize_t i = 0; i < got; i++) {
				if (buf[i] != '\n') {
					if (line.len < CRASH_PRINT_MAX) {
						line.text[line.len++] = buf[i];
					}
					continue;
				}
				line.text[line.len] = '\0';
				if (crash_line_matches(&line, type) && ++seen == n) {
					if (pid > 0 && kill(pid, SIGKILL) != 0) {
						fprintf(stderr, "crash_watch: kill %ld: %s\n",
						        (long)pid, strerror(errno));
					}
					printf("%s\n", line.text);
					rc = 0;
					goto out;
				}
				line.len = 0;
			}
		}
		if (dead) {
			fprintf(stderr,
			        "crash_watch: pid %ld ended after %ld of %ld \"%s\" records\n",
			        (long)pid, seen, n, type);
			rc = 3;
			goto out;
		}
		if (crash_now_ms() >= deadline) {
			fprintf(stderr,
			        "crash_watch: %ld of %ld \"%s\" records in %s after %ld ms\n", seen,
			        n, type, path, timeout_ms);
			rc = 1;
			goto out;
		}
		if (wd >= 0) {
			struct pollfd pfd = {.fd = ifd, .events = POLLIN};
			char ev[CRASH_EVENTS];

			if (poll(&pfd, 1, CRASH_WAKE_MS) > 0) {
				while (read(ifd, ev, sizeof(ev)) > 0) {
				}
			}
		} else {
			nanosleep(&pause, NULL);
		}
	}
out:
	if (fd >= 0) {
		close(fd);
	}
	if (ifd >= 0) {
		close(ifd);
	}
	free(buf);
	return rc;
}
