/*
 * libcurl_floor.c: the least a libcurl multi client does per request, the
 * floor canary-agent is measured against in agent_vs_wrk.sh.
 *
 *   libcurl_floor URL SECONDS CONCURRENCY
 *
 * CONCURRENCY easy handles on one multi handle, each re-added as soon as it
 * finishes, with the options canary-agent sets for speed (CURLOPT_NOSIGNAL,
 * CURLOPT_NOPROXY "*", a URL parsed once, no curl_easy_reset, the DNS cache
 * not walked after each transfer), driven by curl_multi_poll. Bodies are dropped, nothing is
 * checked, no latency is kept: whatever the agent spends beyond this is its own. Linked with
 * mimalloc, as canary-agent is.
 *
 * Prints one line, "requests N seconds S requests_per_s R", and exits 0;
 * exits 1 on a bad argument and 2 when a transfer fails (the figure would
 * not be one of working requests).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <curl/curl.h>

#define FLOOR_MAX_CONCURRENCY 1024
#define FLOOR_MAX_SECONDS     3600
#define FLOOR_POLL_MS         100

static size_t
floor_drop(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	(void)ptr;
	(void)userdata;
	return size * nmemb;
}

static double
floor_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A whole decimal number in lo..hi, or -1. */
static long
floor_arg(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		return -1;
	}
	return v;
}

int
main(int argc, char **argv)
{
	CURLM *multi = NULL;
	CURLU *url = NULL;
	CURL **easy = NULL;
	long secs, conc, requests = 0;
	double start, now;
	int running = 0, rc = 0;

	if (argc != 4 || (secs = floor_arg(argv[2], 1, FLOOR_MAX_SECONDS)) < 0 ||
	    (conc = floor_arg(argv[3], 1, FLOOR_MAX_CONCURRENCY)) < 0) {
		fprintf(stderr,
		        "usage: libcurl_floor URL SECONDS CONCURRENCY (SECONDS 1..%d, "
		        "CONCURRENCY 1..%d)\n",
		        FLOOR_MAX_SECONDS, FLOOR_MAX_CONCURRENCY);
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "libcurl_floor: libcurl global init failed\n");
		return 1;
	}
	multi = curl_multi_init();
	url = curl_url();
	easy = calloc((size_t)conc, sizeof(*easy));
	if (multi == NULL || url == NULL || easy == NULL) {
		fprintf(stderr, "libcurl_floor: out of memory\n");
		rc = 1;
		goto out;
	}
	if (curl_url_set(url, CURLUPART_URL, argv[1], 0) != CURLUE_OK) {
		fprintf(stderr, "libcurl_floor: URL: cannot parse \"%s\"\n", argv[1]);
		rc = 1;
		goto out;
	}
	for (long i = 0; i < conc; i++) {
		easy[i] = curl_easy_init();
		if (easy[i] == NULL || curl_easy_setopt(easy[i], CURLOPT_CURLU, url) != CURLE_OK ||
		    curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
		    curl_easy_setopt(easy[i], CURLOPT_NOPROXY, "*") != CURLE_OK ||
		    curl_easy_setopt(easy[i], CURLOPT_DNS_CACHE_TIMEOUT, -1L) != CURLE_OK ||
		    curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, floor_drop) != CURLE_OK ||
		    curl_multi_add_handle(multi, easy[i]) != CURLM_OK) {
			fprintf(stderr, "libcurl_floor: easy handle set-up failed\n");
			rc = 1;
			goto out;
		}
	}
	start = now = floor_now();
	while (now - start < (double)secs) {
		CURLMsg *m;
		CURL *done;
		int left;

		if (curl_multi_perform(multi, &running) != CURLM_OK) {
			fprintf(stderr, "libcurl_floor: curl_multi_perform failed\n");
			rc = 2;
			goto out;
		}
		while ((m = curl_multi_info_read(multi, &left)) != NULL) {
			if (m->msg != CURLMSG_DONE) {
				continue;
			}
			if (m->data.result != CURLE_OK) {
				fprintf(stderr, "libcurl_floor: a transfer failed: %s\n",
				        curl_easy_strerror(m->data.result));
				rc = 2;
				goto out;
			}
			requests++;
			/* Re-added as it is: the options stay set. m belongs to the
			 * handle's finished transfer, so the handle is read first. */
			done = m->easy_handle;
			curl_multi_remove_handle(multi, done);
			if (curl_multi_add_handle(multi, done) != CURLM_OK) {
				fprintf(stderr,
				        "libcurl_floor: a finished handle could not be re-added\n");
				rc = 2;
				goto out;
			}
		}
		curl_multi_poll(multi, NULL, 0, FLOOR_POLL_MS, NULL);
		now = floor_now();
	}
	printf("requests %ld seconds %.3f requests_per_s %.0f\n", requests, now - start,
	       (double)requests / (now - start));
out:
	for (long i = 0; easy != NULL && i < conc; i++) {
		if (easy[i] != NULL) {
			curl_multi_remove_handle(multi, easy[i]);
			curl_easy_cleanup(easy[i]);
		}
	}
	free(easy);
	curl_url_cleanup(url);
	curl_multi_cleanup(multi);
	curl_global_cleanup();
	return rc;
}
