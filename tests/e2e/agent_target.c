/*
 * agent_target.c: the agent tests' HTTP target (see agent_target.h).
 */
#include "agent_target.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TARGET_HEAD_MAX 8192

static struct {
	int lfd;
	pthread_t thr;
	pthread_mutex_t mu;
	int connections;
	int requests;
	int isr_warm;
	int slow_state; /* /isr-slow: 0 cold, 1 warming, 2 warm */
	int early;
} tgt;

static void
target_sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int
target_write(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w <= 0) {
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
target_versions(int fd, const char *mw, const char *srv, const char *cache)
{
	char head[512];
	snprintf(head, sizeof(head),
	         "HTTP/1.1 200 OK\r\nx-canary-middleware-version: %s\r\n"
	         "x-canary-server-version: %s\r\n%s%s%sContent-Length: 5\r\n\r\nhello",
	         mw, srv, cache != NULL ? "x-opennext-cache: " : "", cache != NULL ? cache : "",
	         cache != NULL ? "\r\n" : "");
	return target_write(fd, head, strlen(head));
}

/* Case-insensitive search for a header name at a line start in head. */
static int
target_has_header(const char *head, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = strstr(head, "\r\n"); p != NULL; p = strstr(p + 2, "\r\n")) {
		if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
			return 1;
		}
	}
	return 0;
}

static int
target_respond(int fd, const char *path, const char *head)
{
	char buf[512];

	if (strcmp(path, "/ok") == 0) {
		return target_versions(fd, AGENT_TARGET_M0, AGENT_TARGET_S0, "HIT");
	}
	if (strcmp(path, "/isr") == 0) {
		int warm;
		pthread_mutex_lock(&tgt.mu);
		warm = tgt.isr_warm;
		tgt.isr_warm = 1;
		pthread_mutex_unlock(&tgt.mu);
		return target_versions(fd, AGENT_TARGET_M0, AGENT_TARGET_S0, warm ? "HIT" : NULL);
	}
	if (strcmp(path, "/isr-slow") == 0) {
		int state;
		pthread_mutex_lock(&tgt.mu);
		state = tgt.slow_state;
		if (state == 0) {
			tgt.slow_state = 1;
		} else if (state == 1) {
			tgt.early++;
		}
		pthread_mutex_unlock(&tgt.mu);
		if (state == 0) {
			target_sleep_ms(150);
			pthread_mutex_lock(&tgt.mu);
			tgt.slow_state = 2;
			pthread_mutex_unlock(&tgt.mu);
		}
		return target_versions(fd, AGENT_TARGET_M0, AGENT_TARGET_S0,
		                       state == 0 ? NULL : "HIT");
	}
	if (strcmp(path, "/override") == 0) {
		if (target_has_header(head, "cloudflare-workers-version-overrides")) {
			return target_versions(fd, AGENT_TARGET_M1, AGENT_TARGET_S1, NULL);
		}
		return target_versions(fd, AGENT_TARGET_M0, AGENT_TARGET_S0, NULL);
	}
	if (strcmp(path, "/slow-head") == 0) {
		target_sleep_ms(800);
		snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
		return target_write(fd, buf, strlen(buf));
	}
	if (strcmp(path, "/reset") == 0) {
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		return -1; /* the caller closes: an RST */
	}
	if (strcmp(path, "/slow-body") == 0) {
		snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
		if (target_write(fd, buf, strlen(buf)) != 0) {
			return -1;
		}
		for (int i = 0; i < 10; i++) {
			target_sleep_ms(30);
			if (target_write(fd, "x", 1) != 0) {
				return -1;
			}
		}
		return 0;
	}
	if (strcmp(path, "/big-headers") == 0) {
		char line[1024];
		memset(line, 'a', sizeof(line));
		memcpy(line, "x-filler: ", 10);
		line[sizeof(line) - 2] = '\r';
		line[sizeof(line) - 1] = '\n';
		snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
		if (target_write(fd, buf, strlen(buf)) != 0) {
			return -1;
		}
		for (int i = 0; i < 200; i++) {
			if (target_write(fd, line, sizeof(line)) != 0) {
				return -1;
			}
		}
		return target_write(fd, "\r\nok", 4);
	}
	if (strcmp(path, "/big-body") == 0) {
		size_t n = 1024 * 1024;
		char *body = malloc(n);
		int rv;
		if (body == NULL) {
			return -1;
		}
		memset(body, 'b', n);
		memcpy(body + n - 6, "NEEDLE", 6);
		snprintf(buf, sizeof(buf),
		         "HTTP/1.1 200 OK\r\nx-canary-middleware-version: %s\r\n"
		         "x-canary-server-version: %s\r\nContent-Length: %zu\r\n\r\n",
		         AGENT_TARGET_M0, AGENT_TARGET_S0, n);
		rv = target_write(fd, buf, strlen(buf));
		if (rv == 0) {
			rv = target_write(fd, body, n);
		}
		free(body);
		return rv;
	}
	if (strcmp(path, "/tricky-headers") == 0) {
		snprintf(buf, sizeof(buf),
		         "HTTP/1.1 103 Early Hints\r\nx-canary-middleware-version: early\r\n\r\n"
		         "HTTP/1.1 200 OK\r\nX-Canary-Middleware-Version-Extra: longer-name\r\n"
		         "X-CANARY-MIDDLEWARE-VERSION: \t %s \t\r\n"
		         "x-canary-middleware-version: second\r\n"
		         "x-canary-server-version:%s\r\nContent-Length: 2\r\n\r\nok",
		         AGENT_TARGET_M0, AGENT_TARGET_S0);
		return target_write(fd, buf, strlen(buf));
	}
	if (strcmp(path, "/status999") == 0) {
		snprintf(buf, sizeof(buf),
		         "HTTP/1.1 999 Odd\r\nx-canary-middleware-version: %s\r\n"
		         "x-canary-server-version: %s\r\nContent-Length: 0\r\n\r\n",
		         AGENT_TARGET_M0, AGENT_TARGET_S0);
		return target_write(fd, buf, strlen(buf));
	}
	if (strcmp(path, "/redirect") == 0) {
		snprintf(buf, sizeof(buf),
		         "HTTP/1.1 302 Found\r\nLocation: /ok\r\nContent-Length: 0\r\n\r\n");
		return target_write(fd, buf, strlen(buf));
	}
	snprintf(buf, sizeof(buf), "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
	return target_write(fd, buf, strlen(buf));
}

/* The end of a request head in buf, or NULL. */
static char *
target_head_end(char *buf, size_t len)
{
	for (size_t i = 0; i + 4 <= len; i++) {
		if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
			return buf + i;
		}
	}
	return NULL;
}

static void *
target_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[TARGET_HEAD_MAX + 1];
	size_t len = 0;

	for (;;) {
		char *end = target_head_end(buf, len);
		char path[256] = "";
		size_t used;

		if (end == NULL) {
			ssize_t r;
			if (len == TARGET_HEAD_MAX) {
				break;
			}
			r = recv(fd, buf + len, TARGET_HEAD_MAX - len, 0);
			if (r <= 0) {
				break;
			}
			len += (size_t)r;
			continue;
		}
		end[2] = '\0'; /* the head, ending in its last CRLF */
		sscanf(buf, "%*s %255s", path);
		pthread_mutex_lock(&tgt.mu);
		tgt.requests++;
		pthread_mutex_unlock(&tgt.mu);
		if (target_respond(fd, path, buf) != 0) {
			break;
		}
		used = (size_t)(end + 4 - buf);
		memmove(buf, buf + used, len - used);
		len -= used;
	}
	close(fd);
	return NULL;
}

static void *
target_accept(void *arg)
{
	(void)arg;
	for (;;) {
		pthread_t t;
		int fd = accept(tgt.lfd, NULL, NULL);
		if (fd < 0) {
			return NULL; /* shut down */
		}
		pthread_mutex_lock(&tgt.mu);
		tgt.connections++;
		pthread_mutex_unlock(&tgt.mu);
		if (pthread_create(&t, NULL, target_conn, (void *)(intptr_t)fd) != 0) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
}

int
agent_target_start(void)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int one = 1;

	memset(&tgt, 0, sizeof(tgt));
	pthread_mutex_init(&tgt.mu, NULL);
	tgt.lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (tgt.lfd < 0) {
		return -1;
	}
	setsockopt(tgt.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(tgt.lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(tgt.lfd, 128) != 0 ||
	    getsockname(tgt.lfd, (struct sockaddr *)&a, &al) != 0 ||
	    pthread_create(&tgt.thr, NULL, target_accept, NULL) != 0) {
		close(tgt.lfd);
		return -1;
	}
	return ntohs(a.sin_port);
}

void
agent_target_counts(int *connections, int *requests)
{
	pthread_mutex_lock(&tgt.mu);
	*connections = tgt.connections;
	*requests = tgt.requests;
	tgt.connections = 0;
	tgt.requests = 0;
	pthread_mutex_unlock(&tgt.mu);
}

int
agent_target_early(void)
{
	int n;
	pthread_mutex_lock(&tgt.mu);
	n = tgt.early;
	pthread_mutex_unlock(&tgt.mu);
	return n;
}

void
agent_target_cool(void)
{
	pthread_mutex_lock(&tgt.mu);
	tgt.isr_warm = 0;
	tgt.slow_state = 0;
	tgt.early = 0;
	pthread_mutex_unlock(&tgt.mu);
}

void
agent_target_stop(void)
{
	shutdown(tgt.lfd, SHUT_RDWR);
	close(tgt.lfd);
	pthread_join(tgt.thr, NULL);
}

void
agent_target_probe(struct canary_probe *p, struct canary_target *targets, size_t n, const char *url,
                   uint32_t requests)
{
	memset(p, 0, sizeof(*p));
	memset(targets, 0, n * sizeof(*targets));
	p->proto_version = CANARY_PROTO_VERSION;
	snprintf(p->rollout_id, sizeof(p->rollout_id), "docs-site");
	p->round = 1;
	p->phase = CANARY_PHASE_BAKE;
	p->deadline_ms = 3000;
	snprintf(targets[0].id, CANARY_ID_LEN, "t0");
	snprintf(targets[0].url, CANARY_URL_LEN, "%s", url);
	snprintf(targets[0].method, sizeof(targets[0].method), "GET");
	targets[0].requests = requests;
	targets[0].timeout_ms = 2000;
	targets[0].expect_status[0] = 200;
	targets[0].n_expect_status = 1;
	p->targets = targets;
	p->n_targets = 1;
	snprintf(p->headers.middleware_version, CANARY_HEADER_NAME_LEN,
	         "x-canary-middleware-version");
	snprintf(p->headers.server_version, CANARY_HEADER_NAME_LEN, "x-canary-server-version");
	snprintf(p->headers.cache, CANARY_HEADER_NAME_LEN, "x-opennext-cache");
	snprintf(p->expect.middleware[0].id, CANARY_UUID_LEN, AGENT_TARGET_M0);
	p->expect.middleware[0].share = 100;
	p->expect.n_middleware = 1;
	snprintf(p->expect.server[0].id, CANARY_UUID_LEN, AGENT_TARGET_S0);
	p->expect.server[0].share = 100;
	p->expect.n_server = 1;
	snprintf(p->expect.pins[0], CANARY_UUID_LEN, AGENT_TARGET_S0);
}
