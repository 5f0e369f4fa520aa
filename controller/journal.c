/*
 * journal.c: fsync'd JSON lines and an fcntl lock. See journal.h.
 */
#include "journal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "jsonc.h"

#define JOURNAL_TYPE_MAX     32
#define JOURNAL_PID_MAX      32 /* bytes of the lock file read back */
#define JOURNAL_RECS_INITIAL 64 /* record slots first allocated by journal_parse */
#define JOURNAL_TS_LEN       96 /* "2026-11-27T21:05:03.120Z", room for any year */

/* fcntl locks belong to the process: a second open of the same lock file
 * here would succeed, and closing either would drop the lock for both. So
 * the journals this process holds are remembered (loop thread only). */
static struct journal *journal_open_list;

struct journal {
	struct journal *next_open;
	pid_t owner; /* the process holding the lock (a fork child does not) */
	dev_t lock_dev;
	ino_t lock_ino;
	char dir[JOURNAL_PATH_MAX];
	char path[JOURNAL_PATH_MAX];
	int fd;      /* journal.jsonl, O_APPEND */
	int lock_fd; /* the lock file, holding the fcntl lock */
	int n;       /* records in the file */
	off_t size;  /* bytes in the file, all whole lines */
	int broken;  /* a write or fsync failed: refuse further appends */
};

/* journal_fsync_dir: makes a new entry in dir durable. */
static int
journal_fsync_dir(const char *dir, char *err, size_t errlen)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rv = 0;

	if (fd < 0) {
		return canary_errf(err, errlen, CANARY_EIO, "%s: %s", dir, strerror(errno));
	}
	if (fsync(fd) != 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "%s: fsync: %s", dir, strerror(errno));
	}
	close(fd);
	return rv;
}

/* journal_mkdirs: mkdir -p, fsync'ing the parent of each directory made. */
static int
journal_mkdirs(const char *dir, char *err, size_t errlen)
{
	char buf[JOURNAL_PATH_MAX];
	size_t len = strlen(dir), i;
	int rv;

	if (len == 0 || len >= sizeof(buf)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "state directory: expected a path of 1 to %d bytes",
		                   JOURNAL_PATH_MAX - 1);
	}
	memcpy(buf, dir, len + 1);
	for (i = 1; i <= len; i++) {
		char saved;

		if (buf[i] != '/' && buf[i] != '\0') {
			continue;
		}
		saved = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0755) == 0) {
			char parent[JOURNAL_PATH_MAX];
			char *slash;

			memcpy(parent, buf, i + 1);
			slash = strrchr(parent, '/');
			if (slash == NULL) {
				strcpy(parent, ".");
			} else if (slash == parent) {
				parent[1] = '\0';
			} else {
				*slash = '\0';
			}
			rv = journal_fsync_dir(parent, err, errlen);
			if (rv != 0) {
				return rv;
			}
		} else if (errno != EEXIST) {
			return canary_errf(err, errlen, CANARY_EIO, "%s: mkdir: %s", buf,
			                   strerror(errno));
		}
		buf[i] = saved;
	}
	return 0;
}

static int
journal_lock(struct journal *j, char *err, size_t errlen)
{
	char path[JOURNAL_PATH_MAX + 16];
	char pidbuf[JOURNAL_PID_MAX];
	struct stat st;
	struct flock fl;
	ssize_t n;
	int len;

	snprintf(path, sizeof(path), "%s/%s", j->dir, JOURNAL_LOCK_FILE);
	/* Look before opening: opening and closing the file here would drop
	 * the lock this process may already hold on it. */
	if (stat(path, &st) == 0) {
		for (struct journal *o = journal_open_list; o != NULL; o = o->next_open) {
			if (o->owner == getpid() && o->lock_dev == st.st_dev &&
			    o->lock_ino == st.st_ino) {
				return canary_errf(
				    err, errlen, CANARY_ELOCKED,
				    "%s: locked by pid %ld: this process already has "
				    "the journal open",
				    path, (long)getpid());
			}
		}
	}
	j->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (j->lock_fd < 0) {
		return canary_errf(err, errlen, CANARY_EIO, "%s: %s", path, strerror(errno));
	}
	if (fstat(j->lock_fd, &st) != 0) {
		return canary_errf(err, errlen, CANARY_EIO, "%s: %s", path, strerror(errno));
	}
	j->owner = getpid();
	j->lock_dev = st.st_dev;
	j->lock_ino = st.st_ino;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(j->lock_fd, F_SETLK, &fl) != 0) {
		long holder = 0;

		if (errno != EACCES && errno != EAGAIN) {
			return canary_errf(err, errlen, CANARY_EIO, "%s: lock: %s", path,
			                   strerror(errno));
		}
		n = pread(j->lock_fd, pidbuf, sizeof(pidbuf) - 1, 0);
		if (n > 0) {
			pidbuf[n] = '\0';
			holder = strtol(pidbuf, NULL, 10);
		}
		if (holder <= 0) {
			/* Not written yet: ask the kernel who holds it. */
			memset(&fl, 0, sizeof(fl));
			fl.l_type = F_WRLCK;
			fl.l_whence = SEEK_SET;
			if (fcntl(j->lock_fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
				holder = (long)fl.l_pid;
			}
		}
		return canary_errf(
		    err, errlen, CANARY_ELOCKED,
		    "%s: locked by pid %ld: another canary-controller runs this rollout", path,
		    holder);
	}
	len = snprintf(pidbuf, sizeof(pidbuf), "%ld\n", (long)getpid());
	if (ftruncate(j->lock_fd, 0) != 0 || pwrite(j->lock_fd, pidbuf, (size_t)len, 0) != len ||
	    fsync(j->lock_fd) != 0) {
		return canary_errf(err, errlen, CANARY_EIO, "%s: writing the pid: %s", path,
		                   strerror(errno));
	}
	return 0;
}

/* journal_scan: counts the whole lines of the open journal and cuts off a
 * torn tail, so the next record starts on a line of its own. */
static int
journal_scan(struct journal *j, char *err, size_t errlen)
{
	char buf[65536];
	off_t off = 0, last_nl = -1;
	ssize_t n;
	int lines = 0;

	for (;;) {
		n = pread(j->fd, buf, sizeof(buf), off);
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return canary_errf(err, errlen, CANARY_EIO, "%s: read: %s", j->path,
			                   strerror(errno));
		}
		if (n == 0) {
			break;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				lines++;
				last_nl = off + i;
			}
		}
		off += n;
		if (off > JOURNAL_MAX_BYTES) {
			return canary_errf(err, errlen, CANARY_ETOOBIG, "%s: more than %d bytes",
			                   j->path, JOURNAL_MAX_BYTES);
		}
	}
	if (off > last_nl + 1) {
		/* A crash mid-write: drop the partial record. It was never
		 * reported written, so no platform call followed it. */
		if (ftruncate(j->fd, last_nl + 1) != 0 || fsync(j->fd) != 0) {
			return canary_errf(err, errlen, CANARY_EIO, "%s: cutting a torn line: %s",
			                   j->path, strerror(errno));
		}
	}
	j->n = lines;
	j->size = last_nl + 1;
	return 0;
}

int
journal_open(const char *state_dir, struct journal **jp, char *err, size_t errlen)
{
	struct journal *j = NULL;
	struct stat st;
	int rv, created;

	*jp = NULL;
	if (state_dir == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL, "state directory: none given");
	}
	rv = journal_mkdirs(state_dir, err, errlen);
	if (rv != 0) {
		return rv;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	j->fd = -1;
	j->lock_fd = -1;
	snprintf(j->dir, sizeof(j->dir), "%s", state_dir);
	if ((size_t)snprintf(j->path, sizeof(j->path), "%s/%s", state_dir, JOURNAL_FILE) >=
	    sizeof(j->path)) {
		rv = canary_errf(err, errlen, CANARY_EINVAL, "%s: path too long", state_dir);
		goto out;
	}
	rv = journal_lock(j, err, errlen);
	if (rv != 0) {
		goto out;
	}
	created = stat(j->path, &st) != 0;
	j->fd = open(j->path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (j->fd < 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "%s: %s", j->path, strerror(errno));
		goto out;
	}
	if (created) {
		rv = journal_fsync_dir(state_dir, err, errlen);
		if (rv != 0) {
			goto out;
		}
	}
	rv = journal_scan(j, err, errlen);
	if (rv != 0) {
		goto out;
	}
	j->next_open = journal_open_list;
	journal_open_list = j;
	*jp = j;
	j = NULL;
out:
	journal_close(j);
	return rv;
}

static int
journal_type_ok(const char *type)
{
	size_t i, len;

	if (type == NULL) {
		return 0;
	}
	len = strlen(type);
	if (len == 0 || len > JOURNAL_TYPE_MAX) {
		return 0;
	}
	for (i = 0; i < len; i++) {
		if (!((type[i] >= 'a' && type[i] <= 'z') || type[i] == '_' || type[i] == '-')) {
			return 0;
		}
	}
	return 1;
}

static void
journal_now(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

int
journal_append(struct journal *j, const char *type, const cJSON *fields, char *err, size_t errlen)
{
	cJSON *rec = NULL;
	const cJSON *f;
	char *text = NULL;
	char ts[JOURNAL_TS_LEN];
	size_t len;
	ssize_t w;
	int rv = 0;

	if (j == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL, "journal: not open");
	}
	if (j->broken) {
		return canary_errf(err, errlen, CANARY_ESTATE,
		                   "%s: an earlier write failed; the journal takes no more records",
		                   j->path);
	}
	if (!journal_type_ok(type)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "journal: record type: expected 1 to %d of [a-z_-]",
		                   JOURNAL_TYPE_MAX);
	}
	if (fields != NULL && !cJSON_IsObject(fields)) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "journal: %s: fields must be an object", type);
	}
	if (j->n >= JOURNAL_MAX_RECORDS) {
		return canary_errf(err, errlen, CANARY_ETOOBIG, "%s: %d records, the most allowed",
		                   j->path, JOURNAL_MAX_RECORDS);
	}
	rec = cJSON_CreateObject();
	journal_now(ts, sizeof(ts));
	if (rec == NULL || cJSON_AddStringToObject(rec, "type", type) == NULL ||
	    cJSON_AddNumberToObject(rec, "seq", j->n + 1) == NULL ||
	    cJSON_AddStringToObject(rec, "ts", ts) == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		goto out;
	}
	cJSON_ArrayForEach(f, fields)
	{
		cJSON *copy;

		if (strcmp(f->string, "type") == 0 || strcmp(f->string, "seq") == 0 ||
		    strcmp(f->string, "ts") == 0) {
			rv = canary_errf(err, errlen, CANARY_EINVAL,
			                 "journal: %s: field \"%s\" is the journal's own", type,
			                 f->string);
			goto out;
		}
		copy = cJSON_Duplicate(f, 1);
		if (copy == NULL) {
			rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
			goto out;
		}
		cJSON_AddItemToObject(rec, f->string, copy);
	}
	text = cJSON_PrintUnformatted(rec);
	if (text == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		goto out;
	}
	len = strlen(text);
	if (len + 1 > JOURNAL_MAX_LINE) {
		rv = canary_errf(err, errlen, CANARY_ETOOBIG,
		                 "journal: %s record of %zu bytes, at most %d", type, len + 1,
		                 JOURNAL_MAX_LINE);
		goto out;
	}
	if ((off_t)(j->size + (off_t)len + 1) > JOURNAL_MAX_BYTES) {
		rv = canary_errf(err, errlen, CANARY_ETOOBIG, "%s: would exceed %d bytes", j->path,
		                 JOURNAL_MAX_BYTES);
		goto out;
	}
	/* cJSON escapes control characters, so the text holds no newline: the
	 * one we add ends the record. */
	text[len] = '\n';
	do {
		w = write(j->fd, text, len + 1);
	} while (w < 0 && errno == EINTR);
	if (w != (ssize_t)(len + 1)) {
		int e = w < 0 ? errno : EIO;

		/* Try to take a partial record back; either way stop here. */
		if (w > 0) {
			(void)ftruncate(j->fd, j->size);
		}
		j->broken = 1;
		rv = canary_errf(err, errlen, CANARY_EIO, "%s: write: %s", j->path, strerror(e));
		goto out;
	}
	if (fsync(j->fd) != 0) {
		j->broken = 1;
		rv =
		    canary_errf(err, errlen, CANARY_EIO, "%s: fsync: %s", j->path, strerror(errno));
		goto out;
	}
	j->size += (off_t)len + 1;
	j->n++;
out:
	free(text);
	cJSON_Delete(rec);
	return rv;
}

int
journal_records(const struct journal *j)
{
	return j != NULL ? j->n : 0;
}

void
journal_close(struct journal *j)
{
	if (j == NULL) {
		return;
	}
	for (struct journal **pp = &journal_open_list; *pp != NULL; pp = &(*pp)->next_open) {
		if (*pp == j) {
			*pp = j->next_open;
			break;
		}
	}
	if (j->fd >= 0) {
		close(j->fd);
	}
	if (j->lock_fd >= 0) {
		/* Closing the descriptor releases the lock. */
		close(j->lock_fd);
	}
	free(j);
}

void
journal_log_free(struct journal_log *log)
{
	if (log == NULL) {
		return;
	}
	for (int i = 0; i < log->n; i++) {
		cJSON_Delete(log->recs[i]);
	}
	free(log->recs);
	log->recs = NULL;
	log->n = 0;
}

/* journal_depth_ok: 1 when node nests at most max levels. */
static int
journal_depth_ok(const cJSON *node, int max)
{
	const cJSON *c;

	if (max < 0) {
		return 0;
	}
	for (c = node->child; c != NULL; c = c->next) {
		if (!journal_depth_ok(c, max - 1)) {
			return 0;
		}
	}
	return 1;
}

int
journal_parse(const char *text, size_t len, const char *name, struct journal_log *log, char *err,
              size_t errlen)
{
	size_t pos = 0, cap = 0;
	int line = 0, rv = 0;
	cJSON *rec = NULL;

	memset(log, 0, sizeof(*log));
	if (len > JOURNAL_MAX_BYTES) {
		return canary_errf(err, errlen, CANARY_ETOOBIG, "%s: more than %d bytes", name,
		                   JOURNAL_MAX_BYTES);
	}
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		char why[CANARY_ERRLEN];
		size_t llen;
		const cJSON *type;

		line++;
		if (nl == NULL) {
			/* The last line has no newline: a write that a crash cut
			 * short. Not a record. */
			log->torn = 1;
			break;
		}
		llen = (size_t)(nl - (text + pos));
		if (llen + 1 > JOURNAL_MAX_LINE) {
			rv = canary_errf(err, errlen, CANARY_EPARSE, "%s:%d: line over %d bytes",
			                 name, line, JOURNAL_MAX_LINE);
			goto out;
		}
		if (llen == 0) {
			rv = canary_errf(err, errlen, CANARY_EPARSE,
			                 "%s:%d: empty line: the journal is corrupt", name, line);
			goto out;
		}
		/* Exactly one value per line: a record glued to the next one
		 * (a lost newline) must not read as the first alone. */
		if (canary_json_parse_exact(text + pos, llen, &rec, why, sizeof(why)) != 0) {
			rv = canary_errf(err, errlen, CANARY_EPARSE,
			                 "%s:%d: not a JSON record (%s): the journal is corrupt",
			                 name, line, why);
			goto out;
		}
		type = cJSON_GetObjectItemCaseSensitive(rec, "type");
		if (!cJSON_IsObject(rec) || !cJSON_IsString(type) ||
		    !journal_depth_ok(rec, JOURNAL_MAX_DEPTH)) {
			rv = canary_errf(
			    err, errlen, CANARY_EPARSE,
			    "%s:%d: expected an object with a string \"type\", nested at "
			    "most %d deep",
			    name, line, JOURNAL_MAX_DEPTH);
			goto out;
		}
		if (log->n >= JOURNAL_MAX_RECORDS) {
			rv = canary_errf(err, errlen, CANARY_ETOOBIG, "%s:%d: more than %d records",
			                 name, line, JOURNAL_MAX_RECORDS);
			goto out;
		}
		if ((size_t)log->n == cap) {
			size_t ncap = cap == 0 ? JOURNAL_RECS_INITIAL : cap * 2;
			cJSON **nr = realloc(log->recs, ncap * sizeof(*nr));

			if (nr == NULL) {
				rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
				goto out;
			}
			log->recs = nr;
			cap = ncap;
		}
		log->recs[log->n++] = rec;
		rec = NULL;
		pos += llen + 1;
	}
out:
	cJSON_Delete(rec);
	if (rv != 0) {
		journal_log_free(log);
	}
	return rv;
}

int
journal_read(const char *state_dir, struct journal_log *log, char *err, size_t errlen)
{
	char path[JOURNAL_PATH_MAX + 16];
	char *buf = NULL;
	struct stat st;
	FILE *f;
	size_t n, want;
	int rv;

	memset(log, 0, sizeof(*log));
	snprintf(path, sizeof(path), "%s/%s", state_dir, JOURNAL_FILE);
	f = fopen(path, "rb");
	if (f == NULL) {
		return canary_errf(err, errlen, errno == ENOENT ? CANARY_ENOENT : CANARY_EIO,
		                   "%s: %s", path, strerror(errno));
	}
	if (fstat(fileno(f), &st) != 0) {
		rv = canary_errf(err, errlen, CANARY_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (st.st_size > JOURNAL_MAX_BYTES) {
		rv = canary_errf(err, errlen, CANARY_ETOOBIG, "%s: more than %d bytes", path,
		                 JOURNAL_MAX_BYTES);
		goto out;
	}
	/* A run may be appending: read what is there now, up to the cap. */
	want = (size_t)st.st_size;
	buf = malloc(want + 1);
	if (buf == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
		goto out;
	}
	n = fread(buf, 1, want, f);
	if (ferror(f)) {
		rv = canary_errf(err, errlen, CANARY_EIO, "%s: read error", path);
		goto out;
	}
	rv = journal_parse(buf, n, path, log, err, errlen);
out:
	free(buf);
	fclose(f);
	return rv;
}

/* ---- replay --------------------------------------------------------- */

static int
journal_str(const cJSON *rec, const char *key, char *dst, size_t dstlen, int required, int recno,
            char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);

	dst[0] = '\0';
	if (v == NULL && !required) {
		return 0;
	}
	if (!cJSON_IsString(v) || strlen(v->valuestring) >= dstlen ||
	    (required && v->valuestring[0] == '\0')) {
		return canary_errf(
		    err, errlen, CANARY_EPARSE,
		    "journal record %d: %s: expected a %sstring of at most %zu bytes", recno, key,
		    required ? "non-empty " : "", dstlen - 1);
	}
	memcpy(dst, v->valuestring, strlen(v->valuestring) + 1);
	return 0;
}

static int
journal_int(const cJSON *rec, const char *key, int *out, int recno, char *err, size_t errlen)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(rec, key);

	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
	    v->valuedouble < INT_MIN || v->valuedouble > INT_MAX) {
		return canary_errf(err, errlen, CANARY_EPARSE,
		                   "journal record %d: %s: expected an integer", recno, key);
	}
	*out = (int)v->valuedouble;
	return 0;
}

/* journal_dep: a deployment in a record; the platform id may be absent (an
 * intent has none yet). */
static int
journal_dep(const cJSON *obj, int recno, struct deployment *dep, char *err, size_t errlen)
{
	const cJSON *versions, *v, *vid, *pct, *id;
	int i = 0;

	memset(dep, 0, sizeof(*dep));
	versions = cJSON_GetObjectItemCaseSensitive(obj, "versions");
	if (!cJSON_IsObject(obj) || !cJSON_IsArray(versions)) {
		return canary_errf(err, errlen, CANARY_EPARSE,
		                   "journal record %d: deployment: expected {\"versions\":[...]}",
		                   recno);
	}
	id = cJSON_GetObjectItemCaseSensitive(obj, "id");
	if (cJSON_IsString(id) && strlen(id->valuestring) < sizeof(dep->id)) {
		memcpy(dep->id, id->valuestring, strlen(id->valuestring) + 1);
	}
	cJSON_ArrayForEach(v, versions)
	{
		if (i >= CANARY_MAX_VERSIONS) {
			return canary_errf(err, errlen, CANARY_EPARSE,
			                   "journal record %d: deployment: more than %d versions",
			                   recno, CANARY_MAX_VERSIONS);
		}
		vid = cJSON_GetObjectItemCaseSensitive(v, "version_id");
		pct = cJSON_GetObjectItemCaseSensitive(v, "percentage");
		if (!cJSON_IsString(vid) || strlen(vid->valuestring) >= CANARY_UUID_LEN ||
		    !cJSON_IsNumber(pct) || pct->valuedouble != floor(pct->valuedouble) ||
		    pct->valuedouble < 0 || pct->valuedouble > 100) {
			return canary_errf(err, errlen, CANARY_EPARSE,
			                   "journal record %d: deployment.versions[%d]: expected "
			                   "{\"version_id\":UUID,\"percentage\":0..100}",
			                   recno, i);
		}
		memcpy(dep->versions[i].version_id, vid->valuestring, strlen(vid->valuestring) + 1);
		dep->versions[i].percentage = (int)pct->valuedouble;
		i++;
	}
	dep->n_versions = i;
	if (deployer_check_deployment(dep, NULL, 0) != 0) {
		char why[CANARY_ERRLEN];

		deployer_check_deployment(dep, why, sizeof(why));
		return canary_errf(err, errlen, CANARY_EPARSE, "journal record %d: %s", recno, why);
	}
	return 0;
}

/* journal_slot: index of worker in an array of per-worker entries (base is
 * the first entry's name, stride the entry size), added when missing; -1
 * when the array is full. */
static int
journal_slot(char *base, size_t stride, int *n, const char *worker)
{
	int i;

	for (i = 0; i < *n; i++) {
		if (strcmp(base + (size_t)i * stride, worker) == 0) {
			return i;
		}
	}
	if (*n >= JOURNAL_MAX_WORKERS) {
		return -1;
	}
	strcpy(base + (size_t)*n * stride, worker);
	return (*n)++;
}

/* A pending intent, kept while replaying. */
struct journal_intent {
	int id;
	const cJSON *rec;
	char op[CANARY_ID_LEN];
	char worker[CANARY_ID_LEN];
	int done;
};

int
journal_replay(const cJSON *const *recs, int n, struct journal_state *st, char *err, size_t errlen)
{
	struct journal_intent *intents = NULL;
	int n_intents = 0, i, k, rv = 0;

	memset(st, 0, sizeof(*st));
	st->exit_code = -1;
	if (n < 0 || n > JOURNAL_MAX_RECORDS || (n > 0 && recs == NULL)) {
		return canary_errf(err, errlen, CANARY_EINVAL, "journal: %d records", n);
	}
	intents = calloc((size_t)(n > 0 ? n : 1), sizeof(*intents));
	if (intents == NULL) {
		return canary_errf(err, errlen, CANARY_ENOMEM, "out of memory");
	}
	for (i = 0; i < n; i++) {
		const cJSON *rec = recs[i];
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(rec, "type");
		const char *t;
		int recno = i + 1;

		if (!cJSON_IsString(type)) {
			rv = canary_errf(err, errlen, CANARY_EPARSE,
			                 "journal record %d: type: expected a string", recno);
			goto out;
		}
		t = type->valuestring;
		if (strcmp(t, "start") == 0) {
			/* A new rollout: forget the previous one. */
			memset(st, 0, sizeof(*st));
			st->exit_code = -1;
			n_intents = 0;
			st->started = 1;
			rv = journal_str(rec, "rollout", st->rollout, sizeof(st->rollout), 0, recno,
			                 err, errlen);
			if (rv != 0) {
				goto out;
			}
			continue;
		}
		if (st->ended) {
			rv = canary_errf(err, errlen, CANARY_EPARSE,
			                 "journal record %d: \"%s\" after the rollout ended", recno,
			                 t);
			goto out;
		}
		if (strcmp(t, "intent") == 0) {
			struct journal_intent *in = &intents[n_intents];

			memset(in, 0, sizeof(*in));
			in->rec = rec;
			rv = journal_int(rec, "id", &in->id, recno, err, errlen);
			if (rv == 0) {
				rv = journal_str(rec, "op", in->op, sizeof(in->op), 1, recno, err,
				                 errlen);
			}
			if (rv == 0) {
				rv = journal_str(rec, "worker", in->worker, sizeof(in->worker), 0,
				                 recno, err, errlen);
			}
			if (rv != 0) {
				goto out;
			}
			for (k = 0; k < n_intents; k++) {
				if (intents[k].id == in->id) {
					rv = canary_errf(
					    err, errlen, CANARY_EPARSE,
					    "journal record %d: id: intent %d already seen", recno,
					    in->id);
					goto out;
				}
			}
			if (strcmp(in->op, "deploy") == 0) {
				struct deployment dep;

				rv =
				    journal_dep(cJSON_GetObjectItemCaseSensitive(rec, "deployment"),
				                recno, &dep, err, errlen);
				if (rv != 0) {
					goto out;
				}
			}
			n_intents++;
		} else if (strcmp(t, "result") == 0) {
			struct journal_intent *in = NULL;
			const cJSON *ok;
			int id = 0;

			rv = journal_int(rec, "id", &id, recno, err, errlen);
			if (rv != 0) {
				goto out;
			}
			for (k = 0; k < n_intents; k++) {
				if (intents[k].id == id) {
					in = &intents[k];
				}
			}
			if (in == NULL || in->done) {
				rv = canary_errf(
				    err, errlen, CANARY_EPARSE,
				    "journal record %d: id: result for %s intent %d", recno,
				    in == NULL ? "unknown" : "an already answered", id);
				goto out;
			}
			in->done = 1;
			ok = cJSON_GetObjectItemCaseSensitive(rec, "ok");
			if (!cJSON_IsBool(ok)) {
				rv = canary_errf(err, errlen, CANARY_EPARSE,
				                 "journal record %d: ok: expected true or false",
				                 recno);
				goto out;
			}
			if (!cJSON_IsTrue(ok) || in->worker[0] == '\0') {
				continue;
			}
			if (strcmp(in->op, "deploy") == 0) {
				const cJSON *d =
				    cJSON_GetObjectItemCaseSensitive(rec, "deployment");
				struct deployment dep;
				int slot;

				/* The platform's answer if recorded, else what was
				 * asked for. */
				if (d == NULL) {
					d = cJSON_GetObjectItemCaseSensitive(in->rec, "deployment");
				}
				rv = journal_dep(d, recno, &dep, err, errlen);
				if (rv != 0) {
					goto out;
				}
				slot = journal_slot(st->applied[0].worker, sizeof(st->applied[0]),
				                    &st->n_applied, in->worker);
				if (slot < 0) {
					rv = canary_errf(err, errlen, CANARY_EPARSE,
					                 "journal record %d: more than %d workers",
					                 recno, JOURNAL_MAX_WORKERS);
					goto out;
				}
				st->applied[slot].dep = dep;
			} else if (strcmp(in->op, "upload") == 0) {
				char vid[CANARY_UUID_LEN];
				int slot;

				rv = journal_str(rec, "version_id", vid, sizeof(vid), 1, recno, err,
				                 errlen);
				if (rv == 0 && !canary_is_uuid(vid)) {
					rv = canary_errf(
					    err, errlen, CANARY_EPARSE,
					    "journal record %d: version_id: expected a uuid",
					    recno);
				}
				if (rv != 0) {
					goto out;
				}
				slot = journal_slot(st->uploaded[0].worker, sizeof(st->uploaded[0]),
				                    &st->n_uploaded, in->worker);
				if (slot < 0) {
					rv = canary_errf(err, errlen, CANARY_EPARSE,
					                 "journal record %d: more than %d workers",
					                 recno, JOURNAL_MAX_WORKERS);
					goto out;
				}
				memcpy(st->uploaded[slot].version_id, vid, sizeof(vid));
			}
		} else if (strcmp(t, "step") == 0) {
			rv = journal_str(rec, "step", st->last_step, sizeof(st->last_step), 1,
			                 recno, err, errlen);
			if (rv != 0) {
				goto out;
			}
		} else if (strcmp(t, "rollback") == 0) {
			st->rolling_back = 1;
		} else if (strcmp(t, "end") == 0) {
			const cJSON *code = cJSON_GetObjectItemCaseSensitive(rec, "exit_code");

			rv = journal_str(rec, "outcome", st->outcome, sizeof(st->outcome), 1, recno,
			                 err, errlen);
			if (rv == 0 && code != NULL) {
				rv = journal_int(rec, "exit_code", &st->exit_code, recno, err,
				                 errlen);
			}
			if (rv != 0) {
				goto out;
			}
			st->ended = 1;
		}
		/* verdict and unknown types carry nothing replay needs. */
	}
	st->n_records = n;
	for (k = n_intents - 1; k >= 0; k--) {
		if (!intents[k].done) {
			st->pending = intents[k].rec;
			st->pending_id = intents[k].id;
			memcpy(st->pending_op, intents[k].op, sizeof(st->pending_op));
			memcpy(st->pending_worker, intents[k].worker, sizeof(st->pending_worker));
			break;
		}
	}
out:
	free(intents);
	return rv;
}

const struct deployment *
journal_applied(const struct journal_state *st, const char *worker)
{
	for (int i = 0; i < st->n_applied; i++) {
		if (strcmp(st->applied[i].worker, worker) == 0) {
			return &st->applied[i].dep;
		}
	}
	return NULL;
}

const char *
journal_uploaded(const struct journal_state *st, const char *worker)
{
	for (int i = 0; i < st->n_uploaded; i++) {
		if (strcmp(st->uploaded[i].worker, worker) == 0) {
			return st->uploaded[i].version_id;
		}
	}
	return NULL;
}
