/*
 * allow.c: host allowlist (see allow.h).
 */
#include "allow.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "err.h"

void
agent_allow_init(struct agent_allow *a)
{
	memset(a, 0, sizeof(*a));
}

static char
allow_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Copies s lowercased into out (size AGENT_HOST_LEN) without one trailing
 * dot; 0, or -1 when it does not fit. */
static int
allow_normalise(const char *s, char *out)
{
	size_t n = strlen(s);

	if (n > 0 && s[n - 1] == '.') {
		n--;
	}
	if (n >= AGENT_HOST_LEN) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		out[i] = allow_lower(s[i]);
	}
	out[n] = '\0';
	return 0;
}

/* Rewrites an IPv6 literal in h (size AGENT_HOST_LEN; brackets allowed) in
 * its one canonical text, so "0:0::1", "[::1]" and "::1" are one host, and
 * "::FFFF:7f00:1" is "::ffff:127.0.0.1". 0 when h is one (or holds no
 * ':'), -1 when h has a ':' and is no IPv6 address (a "host:port"). */
static int
allow_canon_ipv6(char *h)
{
	struct in6_addr a;
	char bare[AGENT_HOST_LEN];
	size_t n = strlen(h);

	if (strchr(h, ':') == NULL) {
		return 0;
	}
	if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
		memcpy(bare, h + 1, n - 2);
		bare[n - 2] = '\0';
	} else {
		memcpy(bare, h, n + 1);
	}
	if (inet_pton(AF_INET6, bare, &a) != 1 ||
	    inet_ntop(AF_INET6, &a, h, AGENT_HOST_LEN) == NULL) {
		return -1;
	}
	return 0;
}

static int
allow_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
	       c == ':' || c == '_';
}

int
agent_allow_add(struct agent_allow *a, const char *pattern, char *err, size_t errlen)
{
	char h[AGENT_HOST_LEN];
	const char *rest;

	if (a->n >= AGENT_MAX_ALLOW_HOSTS) {
		return canary_errf(err, errlen, CANARY_ETOOBIG, "--allow-host: at most %d entries",
		                   AGENT_MAX_ALLOW_HOSTS);
	}
	if (pattern[0] == '\0' || allow_normalise(pattern, h) != 0 || h[0] == '\0') {
		return canary_errf(
		    err, errlen, CANARY_EINVAL,
		    "--allow-host \"%.64s\": expected a host name of 1..%d characters", pattern,
		    AGENT_HOST_LEN - 1);
	}
	if (allow_canon_ipv6(h) != 0) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "--allow-host \"%.64s\": a ':' only belongs in an IPv6 address "
		                   "(ports are not matched: give the host alone)",
		                   pattern);
	}
	rest = h;
	if (h[0] == '*') {
		if (h[1] != '.' || h[2] == '\0' || h[2] == '.') {
			return canary_errf(
			    err, errlen, CANARY_EINVAL,
			    "--allow-host \"%.64s\": a wildcard must be \"*.suffix\"", pattern);
		}
		rest = h + 2;
	}
	for (const char *p = rest; *p != '\0'; p++) {
		if (!allow_host_char(*p)) {
			return canary_errf(err, errlen, CANARY_EINVAL,
			                   "--allow-host \"%.64s\": '%c' cannot be in a host name",
			                   pattern, *p);
		}
	}
	memcpy(a->hosts[a->n], h, sizeof(h));
	a->n++;
	return 0;
}

int
agent_allow_match(const struct agent_allow *a, const char *host)
{
	char h[AGENT_HOST_LEN];
	size_t hn;

	/* An empty label ("a..example.com") names no host. */
	if (host == NULL || allow_normalise(host, h) != 0 || h[0] == '\0' ||
	    strstr(h, "..") != NULL || allow_canon_ipv6(h) != 0) {
		return 0;
	}
	hn = strlen(h);
	for (int i = 0; i < a->n; i++) {
		const char *p = a->hosts[i];
		if (p[0] == '*') {
			size_t sn = strlen(p + 1); /* ".suffix" */
			if (hn > sn && strcmp(h + hn - sn, p + 1) == 0) {
				return 1;
			}
		} else if (strcmp(h, p) == 0) {
			return 1;
		}
	}
	return 0;
}
