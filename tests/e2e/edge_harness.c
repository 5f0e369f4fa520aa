/*
 * edge_harness.c: process and HTTP helpers for canary-edge's e2e tests.
 */
#include "edge_harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define EH_LINE_MAX 512
#define EH_BODY_MAX (16 * 1024 * 1024)
#define EH_ARGS_MAX 64

static CURL *eh_curl;

/* eh_copy: src into dst (n bytes), cut to fit. */
static void
eh_copy(char *dst, size_t n, const char *src)
{
	size_t len = strlen(src);

	if (len >= n) {
		len = n - 1;
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
}

long long
eh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* eh_readline: one line from fd, byte by byte (the child writes few). */
static int
eh_readline(int fd, char *buf, size_t n)
{
	size_t k = 0;

	while (k + 1 < n) {
		char c;
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			return -1;
		}
		if (c == '\n') {
			break;
		}
		buf[k++] = c;
	}
	buf[k] = '\0';
	return 0;
}

int
eh_start(struct eh_edge *e, const char *bin, const char *const *args)
{
	const char *argv[EH_ARGS_MAX];
	int fds[2];
	int n = 0;
	char line[EH_LINE_MAX];

	memset(e, 0, sizeof(*e));
	argv[n++] = bin;
	argv[n++] = "--api";
	argv[n++] = "127.0.0.1:0";
	for (int i = 0; args != NULL && args[i] != NULL && n < EH_ARGS_MAX - 1; i++) {
		argv[n++] = args[i];
	}
	argv[n] = NULL;
	if (pipe(fds) != 0) {
		return -1;
	}
	e->pid = fork();
	if (e->pid < 0) {
		return -1;
	}
	if (e->pid == 0) {
		/* A failed assertion leaves the test without stopping its edge: the
		 * edge goes when the test process does, so ctest is not left waiting
		 * on its stdout until the timeout. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() == 1) {
			_exit(127);
		}
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	e->out_fd = fds[0];
	for (;;) {
		if (eh_readline(e->out_fd, line, sizeof(line)) != 0) {
			eh_stop(e);
			return -1;
		}
		if (strncmp(line, "canary-edge: api ", 17) == 0) {
			eh_copy(e->api, sizeof(e->api), line + 17);
		} else if (strncmp(line, "canary-edge: region ", 20) == 0 &&
		           e->n_regions < EH_MAX_REGIONS) {
			char *sp = strchr(line + 20, ' ');

			if (sp == NULL) {
				continue;
			}
			*sp = '\0';
			eh_copy(e->region_name[e->n_regions], sizeof(e->region_name[0]), line + 20);
			eh_copy(e->region_url[e->n_regions], sizeof(e->region_url[0]), sp + 1);
			e->n_regions++;
		} else if (strncmp(line, "canary-edge: ready", 18) == 0) {
			break;
		}
	}
	{
		long st;
		cJSON *s = eh_api(e, "GET", "/__edge/state", NULL, NULL, 0, &st);
		const cJSON *w;

		cJSON_ArrayForEach(w, cJSON_GetObjectItem(s, "workers"))
		{
			const cJSON *d = cJSON_GetObjectItem(w, "deployment");
			const char *id =
			    cJSON_GetObjectItem(
			        cJSON_GetArrayItem(cJSON_GetObjectItem(d, "versions"), 0),
			        "version_id")
			        ->valuestring;
			const char *name = cJSON_GetObjectItem(w, "name")->valuestring;

			if (strcmp(name, "main-server") == 0) {
				snprintf(e->seed_server, sizeof(e->seed_server), "%s", id);
			} else if (strcmp(name, "middleware") == 0) {
				snprintf(e->seed_middleware, sizeof(e->seed_middleware), "%s", id);
			}
		}
		cJSON_Delete(s);
	}
	return 0;
}

int
eh_stop(struct eh_edge *e)
{
	int status = -1;

	if (e->pid > 0) {
		kill(e->pid, SIGTERM);
		if (waitpid(e->pid, &status, 0) != e->pid) {
			status = -1;
		}
		e->pid = 0;
	}
	if (e->out_fd > 0) {
		close(e->out_fd);
		e->out_fd = 0;
	}
	/* Drop pooled connections to the stopped process. */
	if (eh_curl != NULL) {
		curl_easy_cleanup(eh_curl);
		eh_curl = NULL;
	}
	return status;
}

const char *
eh_region(const struct eh_edge *e, const char *name)
{
	for (int i = 0; i < e->n_regions; i++) {
		if (strcmp(e->region_name[i], name) == 0) {
			return e->region_url[i];
		}
	}
	return NULL;
}

struct eh_buf {
	char *p;
	size_t len;
	size_t cap;
};

static size_t
eh_on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct eh_buf *b = arg;
	size_t n = size * nmemb;

	if (b->len + n + 1 > EH_BODY_MAX) {
		return 0;
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *np = realloc(b->p, cap);

		if (np == NULL) {
			return 0;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

static size_t
eh_on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct eh_resp *r = arg;
	size_t n = size * nmemb;
	size_t have = strlen(r->headers);

	if (n >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		r->headers[0] = '\0'; /* a new response (after 100-continue) */
		have = 0;
	}
	if (have + n + 1 < sizeof(r->headers)) {
		memcpy(r->headers + have, data, n);
		r->headers[have + n] = '\0';
	}
	return n;
}

int
eh_http(const char *method, const char *url, const char *const *headers, const char *body,
        size_t body_len, struct eh_resp *r)
{
	struct curl_slist *hl = NULL;
	struct eh_buf b = {0};
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	if (eh_curl == NULL) {
		eh_curl = curl_easy_init();
		if (eh_curl == NULL) {
			return -1;
		}
	}
	curl_easy_reset(eh_curl);
	for (int i = 0; headers != NULL && headers[i] != NULL; i++) {
		hl = curl_slist_append(hl, headers[i]);
	}
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(eh_curl, CURLOPT_URL, url);
	curl_easy_setopt(eh_curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(eh_curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(eh_curl, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(eh_curl, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(eh_curl, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(eh_curl, CURLOPT_WRITEFUNCTION, eh_on_body);
	curl_easy_setopt(eh_curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(eh_curl, CURLOPT_HEADERFUNCTION, eh_on_header);
	curl_easy_setopt(eh_curl, CURLOPT_HEADERDATA, r);
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(eh_curl, CURLOPT_NOBODY, 1L);
	}
	if (body != NULL) {
		curl_easy_setopt(eh_curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(eh_curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	}
	rc = curl_easy_perform(eh_curl);
	curl_slist_free_all(hl);
	if (rc != CURLE_OK) {
		free(b.p);
		fprintf(stderr, "eh_http %s %s: %s\n", method, url, curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(eh_curl, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(eh_curl, CURLINFO_TOTAL_TIME, &r->seconds);
	r->body = b.p != NULL ? b.p : calloc(1, 1);
	r->len = b.len;
	return 0;
}

void
eh_resp_free(struct eh_resp *r)
{
	free(r->body);
	r->body = NULL;
}

char *
eh_header(const struct eh_resp *r, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);
	const char *p = r->headers;

	out[0] = '\0';
	while (p != NULL && *p != '\0') {
		const char *eol = strstr(p, "\r\n");

		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1;
			size_t len;

			while (*v == ' ') {
				v++;
			}
			len = eol != NULL ? (size_t)(eol - v) : strlen(v);
			if (len >= outlen) {
				len = outlen - 1;
			}
			memcpy(out, v, len);
			out[len] = '\0';
			return out;
		}
		p = eol != NULL ? eol + 2 : NULL;
	}
	return out;
}

cJSON *
eh_api(const struct eh_edge *e, const char *method, const char *path, const char *ctype,
       const char *body, size_t len, long *status)
{
	char url[1024], ct[256];
	const char *hs[3] = {"Authorization: Bearer tok", NULL, NULL};
	struct eh_resp r;
	cJSON *j;

	snprintf(url, sizeof(url), "%s%s", e->api, path);
	if (ctype != NULL) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
		hs[1] = ct;
	}
	*status = -1;
	if (eh_http(method, url, hs, body, len, &r) != 0) {
		return NULL;
	}
	*status = r.status;
	j = cJSON_Parse(r.body);
	eh_resp_free(&r);
	return j;
}

#define EH_BOUNDARY "----eh-boundary-7d1f"

long
eh_upload(const struct eh_edge *e, const char *worker, const char *bindings_json, char *id)
{
	char body[16384], path[256];
	long status;
	cJSON *j;
	int n =
	    snprintf(body, sizeof(body),
	             "--" EH_BOUNDARY "\r\n"
	             "Content-Disposition: form-data; name=\"metadata\"\r\n\r\n"
	             "{\"main_module\":\"index.js\",\"bindings\":%s,"
	             "\"compatibility_date\":\"2025-04-14\"}\r\n"
	             "--" EH_BOUNDARY "\r\n"
	             "Content-Disposition: form-data; name=\"index.js\"; filename=\"index.js\"\r\n"
	             "Content-Type: application/javascript+module\r\n\r\n"
	             "export default { fetch() { return new Response('x') } }\r\n"
	             "--" EH_BOUNDARY "--\r\n",
	             bindings_json);

	snprintf(path, sizeof(path), "/client/v4/accounts/acct/workers/scripts/%s/versions",
	         worker);
	j = eh_api(e, "POST", path, "multipart/form-data; boundary=" EH_BOUNDARY, body, (size_t)n,
	           &status);
	if (status == 200) {
		snprintf(id, 37, "%s",
		         cJSON_GetObjectItem(cJSON_GetObjectItem(j, "result"), "id")->valuestring);
	}
	cJSON_Delete(j);
	return status == 200 ? 0 : status;
}

long
eh_deploy(const struct eh_edge *e, const char *worker, const char *id1, int pct1, const char *id2,
          int pct2)
{
	char body[512], path[256];
	long status;
	int n;

	if (id2 != NULL) {
		n = snprintf(body, sizeof(body),
		             "{\"strategy\":\"percentage\",\"versions\":[{\"version_id\":\"%s\","
		             "\"percentage\":%d},{\"version_id\":\"%s\",\"percentage\":%d}]}",
		             id1, pct1, id2, pct2);
	} else {
		n = snprintf(body, sizeof(body),
		             "{\"strategy\":\"percentage\",\"versions\":[{\"version_id\":\"%s\","
		             "\"percentage\":%d}]}",
		             id1, pct1);
	}
	snprintf(path, sizeof(path), "/client/v4/accounts/acct/workers/scripts/%s/deployments",
	         worker);
	cJSON_Delete(eh_api(e, "POST", path, "application/json", body, (size_t)n, &status));
	return status == 200 ? 0 : status;
}

long
eh_get(const char *url, const char *path, const char *const *headers, char *mw, char *srv,
       char *cache)
{
	char full[1024];
	struct eh_resp r;
	long status;

	snprintf(full, sizeof(full), "%s%s", url, path);
	if (eh_http("GET", full, headers, NULL, 0, &r) != 0) {
		return -1;
	}
	if (mw != NULL) {
		eh_header(&r, "x-canary-middleware-version", mw, 64);
	}
	if (srv != NULL) {
		eh_header(&r, "x-canary-server-version", srv, 64);
	}
	if (cache != NULL) {
		eh_header(&r, "x-opennext-cache", cache, 64);
	}
	status = r.status;
	eh_resp_free(&r);
	return status;
}
