/*
 * allow.h: the host allowlist of an agent (--allow-host).
 *
 * An agent probes only hosts on its own list, so no controller can aim it at
 * someone else's site. An entry is an exact host name ("docs.example.com"),
 * an IP literal, or "*.suffix" ("*.example.com": any name ending in
 * ".example.com", not "example.com" itself). Matching ignores case and one
 * trailing dot; IPv6 literals (bare or in brackets) are compared in their
 * canonical form. An entry holds no port: "host:port" is refused, since
 * the host alone is what is matched. A host with an empty label
 * ("a..example.com") never matches. Pure: no I/O.
 */
#ifndef AGENT_ALLOW_H
#define AGENT_ALLOW_H

#include <stddef.h>

#include "defaults.h"

#define AGENT_HOST_LEN 256 /* a DNS name is at most 253 characters */

struct agent_allow {
	char hosts[AGENT_MAX_ALLOW_HOSTS][AGENT_HOST_LEN]; /* lowercased, no trailing dot */
	int n;
};

void agent_allow_init(struct agent_allow *a);

/* agent_allow_add: adds pattern. Returns 0, CANARY_EINVAL (empty, too long,
 * a character a host name cannot hold, a '*' anywhere but a leading "*.",
 * a ':' outside an IPv6 address)
 * or CANARY_ETOOBIG (more than AGENT_MAX_ALLOW_HOSTS), with words in err. */
int agent_allow_add(struct agent_allow *a, const char *pattern, char *err, size_t errlen);

/* agent_allow_match: 1 when host is allowed, else 0. */
int agent_allow_match(const struct agent_allow *a, const char *host);

#endif /* AGENT_ALLOW_H */
