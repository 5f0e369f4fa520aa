/*
 * fault_agent.c: a fake canary-agent that answers every survey with a bad
 * report, for the controller's fault tests.
 *
 *   fault_agent --dial tcp://ADDR:PORT --region NAME --id ID --modes M1,M2,...
 *
 * Dials the controller as an nng respondent (plain tcp: the controller runs
 * with --insecure) and answers the Nth survey with mode M(N mod count):
 *   garbage    bytes that are not JSON
 *   binary     a report with a NUL byte and raw control characters in it
 *   truncated  a valid report cut in the middle
 *   deep       arrays nested far past CANARY_MSG_MAX_DEPTH
 *   badfield   a report whose "round" is a string
 *   badproto   a report of protocol version 99
 *   oversized  a valid report padded past CANARY_MSG_MAX_BYTES (nng drops
 *              it at the receive cap and closes the pipe; the fake redials)
 *   empty      a zero-length message
 *   valid      a well-formed report with no targets (the gate refuses it as
 *              covering none of the round's targets)
 * The report it starts from names the survey's rollout and round, so only
 * the fault differs. Prints one line per answer:
 *   fault_agent: round N mode M bytes B
 * Runs until SIGTERM/SIGINT.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/survey0/respond.h>

#include "err.h"
#include "msg.h"

#define FAKE_MAX_MODES    32
#define FAKE_MODE_LEN     16
#define FAKE_DEEP_LEVELS  200
#define FAKE_OVERSIZE     (CANARY_MSG_MAX_BYTES + 64 * 1024)
#define FAKE_RECV_TIMEOUT 200 /* ms: how often the stop flag is looked at */
#define FAKE_RECONNMINT   100
#define FAKE_RECONNMAXT   500

static volatile sig_atomic_t fake_stop;

static void
fake_on_signal(int sig)
{
	(void)sig;
	fake_stop = 1;
}

/* fake_base_report: a valid report for probe p, encoded; caller frees. */
static char *
fake_base_report(const struct canary_probe *p, const char *region, const char *id, size_t *len)
{
	struct canary_report r;
	char *out = NULL;
	char err[CANARY_ERRLEN];

	memset(&r, 0, sizeof(r));
	r.proto_version = CANARY_PROTO_VERSION;
	snprintf(r.agent_id, sizeof(r.agent_id), "%s", id);
	snprintf(r.region, sizeof(r.region), "%s", region);
	snprintf(r.rollout_id, sizeof(r.rollout_id), "%s", p->rollout_id);
	r.round = p->round;
	if (canary_report_encode(&r, &out, len, err, sizeof(err)) != 0) {
		fprintf(stderr, "fault_agent: encode: %s\n", err);
		return NULL;
	}
	return out;
}

/* fake_replace: base with the first `from` replaced by `to`; caller frees. */
static char *
fake_replace(const char *base, const char *from, const char *to, size_t *len)
{
	const char *at = strstr(base, from);
	size_t n;
	char *out;

	if (at == NULL) {
		return NULL;
	}
	n = strlen(base) - strlen(from) + strlen(to);
	if ((out = malloc(n + 1)) == NULL) {
		return NULL;
	}
	memcpy(out, base, (size_t)(at - base));
	strcpy(out + (at - base), to);
	strcat(out, at + strlen(from));
	*len = n;
	return out;
}

/* fake_build: the answer for mode to probe p. Returns a malloc'd buffer of
 * *len bytes, or NULL for an unknown mode or no memory. */
static char *
fake_build(const char *mode, const struct canary_probe *p, const char *region, const char *id,
           size_t *len)
{
	size_t blen = 0;
	char *base = fake_base_report(p, region, id, &blen);
	char *out = NULL;
	char round[64];

	if (base == NULL) {
		return NULL;
	}
	snprintf(round, sizeof(round), "\"round\":%llu", (unsigned long long)p->round);
	if (strcmp(mode, "valid") == 0) {
		out = base;
		base = NULL;
		*len = blen;
	} else if (strcmp(mode, "garbage") == 0) {
		out = strdup("this is not a report {\"v\":1,");
		*len = out != NULL ? strlen(out) : 0;
	} else if (strcmp(mode, "binary") == 0) {
		if ((out = malloc(blen + 4)) != NULL) {
			memcpy(out, base, blen);
			memcpy(out + blen / 2, "\x00\x01\x1b", 3);
			*len = blen;
		}
	} else if (strcmp(mode, "truncated") == 0) {
		out = base;
		base = NULL;
		*len = blen / 2;
	} else if (strcmp(mode, "deep") == 0) {
		if ((out = malloc(2 * FAKE_DEEP_LEVELS)) != NULL) {
			memset(out, '[', FAKE_DEEP_LEVELS);
			memset(out + FAKE_DEEP_LEVELS, ']', FAKE_DEEP_LEVELS);
			*len = 2 * FAKE_DEEP_LEVELS;
		}
	} else if (strcmp(mode, "badfield") == 0) {
		out = fake_replace(base, round, "\"round\":\"soon\"", len);
	} else if (strcmp(mode, "badproto") == 0) {
		out = fake_replace(base, "\"v\":1", "\"v\":99", len);
	} else if (strcmp(mode, "oversized") == 0) {
		/* Valid JSON (whitespace before the closing brace), only too big. */
		if ((out = malloc(FAKE_OVERSIZE)) != NULL) {
			memcpy(out, base, blen - 1);
			memset(out + blen - 1, ' ', FAKE_OVERSIZE - blen);
			out[FAKE_OVERSIZE - 1] = '}';
			*len = FAKE_OVERSIZE;
		}
	} else if (strcmp(mode, "empty") == 0) {
		out = malloc(1);
		*len = 0;
	}
	free(base);
	return out;
}

int
main(int argc, char **argv)
{
	const char *url = NULL, *region = NULL, *id = NULL, *modes_arg = NULL;
	char modes[FAKE_MAX_MODES][FAKE_MODE_LEN];
	int n_modes = 0, answered = 0, rv, rc = 1;
	nng_socket s = NNG_SOCKET_INITIALIZER;
	nng_dialer d;
	struct sigaction sa;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--dial") == 0) {
			url = argv[i + 1];
		} else if (strcmp(argv[i], "--region") == 0) {
			region = argv[i + 1];
		} else if (strcmp(argv[i], "--id") == 0) {
			id = argv[i + 1];
		} else if (strcmp(argv[i], "--modes") == 0) {
			modes_arg = argv[i + 1];
		}
	}
	if (url == NULL || region == NULL || id == NULL || modes_arg == NULL ||
	    strncmp(url, "tcp://", 6) != 0) {
		fprintf(stderr, "usage: fault_agent --dial tcp://ADDR:PORT --region NAME --id ID "
		                "--modes M1,M2,...\n");
		return 2;
	}
	for (const char *m = modes_arg; *m != '\0' && n_modes < FAKE_MAX_MODES;) {
		size_t k = strcspn(m, ",");
		struct canary_probe dummy;
		size_t len = 0;
		char *probe_out;

		if (k == 0 || k >= FAKE_MODE_LEN) {
			fprintf(stderr, "fault_agent: bad mode list \"%s\"\n", modes_arg);
			return 2;
		}
		memcpy(modes[n_modes], m, k);
		modes[n_modes][k] = '\0';
		/* An unknown mode is a usage error now, not a silent skip later. */
		memset(&dummy, 0, sizeof(dummy));
		snprintf(dummy.rollout_id, sizeof(dummy.rollout_id), "x");
		probe_out = fake_build(modes[n_modes], &dummy, region, id, &len);
		if (probe_out == NULL) {
			fprintf(stderr, "fault_agent: unknown mode \"%s\"\n", modes[n_modes]);
			return 2;
		}
		free(probe_out);
		n_modes++;
		m += k;
		if (*m == ',') {
			m++;
		}
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fake_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if ((rv = nng_respondent0_open(&s)) != 0 ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, FAKE_RECV_TIMEOUT)) != 0 ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_RECONNMINT, FAKE_RECONNMINT)) != 0 ||
	    (rv = nng_socket_set_ms(s, NNG_OPT_RECONNMAXT, FAKE_RECONNMAXT)) != 0 ||
	    (rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, CANARY_MSG_MAX_BYTES)) != 0 ||
	    (rv = nng_dialer_create(&d, s, url)) != 0 ||
	    (rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
		fprintf(stderr, "fault_agent: %s: %s\n", url, nng_strerror(rv));
		goto out;
	}
	while (!fake_stop) {
		nng_msg *msg = NULL;
		struct canary_probe p;
		char err[CANARY_ERRLEN];
		const char *mode;
		char *out;
		size_t len = 0;

		rv = nng_recvmsg(s, &msg, 0);
		if (rv == NNG_ETIMEDOUT) {
			continue;
		}
		if (rv != 0) {
			fprintf(stderr, "fault_agent: receive: %s\n", nng_strerror(rv));
			goto out;
		}
		rv = canary_probe_decode(nng_msg_body(msg), nng_msg_len(msg), &p, err, sizeof(err));
		if (rv != 0) {
			fprintf(stderr, "fault_agent: the survey does not decode: %s\n", err);
			nng_msg_free(msg);
			continue;
		}
		mode = modes[answered % n_modes];
		out = fake_build(mode, &p, region, id, &len);
		if (out == NULL) {
			fprintf(stderr, "fault_agent: out of memory\n");
			canary_probe_free(&p);
			nng_msg_free(msg);
			goto out;
		}
		/* The reply reuses the survey's message: its header is the
		 * backtrace the surveyor matches the answer by. */
		nng_msg_clear(msg);
		if ((rv = nng_msg_append(msg, out, len)) != 0 ||
		    (rv = nng_sendmsg(s, msg, 0)) != 0) {
			fprintf(stderr, "fault_agent: send: %s\n", nng_strerror(rv));
			nng_msg_free(msg);
		}
		printf("fault_agent: round %llu mode %s bytes %zu\n", (unsigned long long)p.round,
		       mode, len);
		fflush(stdout);
		answered++;
		free(out);
		canary_probe_free(&p);
	}
	rc = 0;
out:
	nng_close(s);
	return rc;
}
