/*
 * link.c: the nng transport policy, mutual TLS set-up and the event queue
 * from nng threads to a libevent loop (see link.h).
 */
#include "link.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <nng/supplemental/tls/tls.h>

#include "err.h"

struct link_scheme {
	const char *prefix;
	int secure; /* needs no --insecure */
};

static const struct link_scheme link_schemes[] = {
    {"tls+tcp://", 1}, {"tls+tcp4://", 1}, {"tls+tcp6://", 1}, {"tcp://", 0},
    {"tcp4://", 0},    {"tcp6://", 0},     {"ipc://", 0},
};

static const struct link_scheme *
link_scheme_of(const char *url)
{
	for (size_t i = 0; i < sizeof(link_schemes) / sizeof(link_schemes[0]); i++) {
		if (strncmp(url, link_schemes[i].prefix, strlen(link_schemes[i].prefix)) == 0) {
			return &link_schemes[i];
		}
	}
	return NULL;
}

int
canary_link_check_url(const char *url, int insecure, char *err, size_t errlen)
{
	const struct link_scheme *sc;

	if (url == NULL || url[0] == '\0') {
		return canary_errf(err, errlen, CANARY_EINVAL, "link URL: empty");
	}
	if (strlen(url) >= CANARY_LINK_URL_MAX) {
		return canary_errf(err, errlen, CANARY_EINVAL, "link URL: longer than %d bytes",
		                   CANARY_LINK_URL_MAX - 1);
	}
	sc = link_scheme_of(url);
	if (sc == NULL) {
		return canary_errf(err, errlen, CANARY_EINVAL,
		                   "%s: expected a tls+tcp://, tcp:// or ipc:// URL", url);
	}
	if (url[strlen(sc->prefix)] == '\0') {
		return canary_errf(err, errlen, CANARY_EINVAL, "%s: no address after the scheme",
		                   url);
	}
	if (!sc->secure && !insecure) {
		return canary_errf(
		    err, errlen, CANARY_EDENIED,
		    "%s: plain %.*s has no authentication or encryption; use tls+tcp:// "
		    "or pass --insecure",
		    url, (int)(strlen(sc->prefix) - 3), sc->prefix);
	}
	return 0;
}

static int
link_is_tls(const char *url)
{
	const struct link_scheme *sc = link_scheme_of(url);
	return sc != NULL && sc->secure;
}

/* Reads a PEM file of at most CANARY_LINK_PEM_MAX bytes into a malloc'd,
 * NUL-terminated buffer, and checks it holds a PEM block with marker. */
static int
link_read_pem(const char *what, const char *path, const char *marker, char **outp, char *err,
              size_t errlen)
{
	FILE *f = NULL;
	char *buf = NULL;
	size_t n;
	int rv = 0;

	*outp = NULL;
	if (path == NULL || path[0] == '\0') {
		return canary_errf(err, errlen, CANARY_ETLS, "%s: no file given", what);
	}
	f = fopen(path, "rb");
	if (f == NULL) {
		rv =
		    canary_errf(err, errlen, CANARY_ETLS, "%s %s: %s", what, path, strerror(errno));
		goto out;
	}
	buf = malloc(CANARY_LINK_PEM_MAX + 1);
	if (buf == NULL) {
		rv = canary_errf(err, errlen, CANARY_ENOMEM, "%s %s: out of memory", what, path);
		goto out;
	}
	n = fread(buf, 1, CANARY_LINK_PEM_MAX + 1, f);
	if (ferror(f)) {
		rv = canary_errf(err, errlen, CANARY_ETLS, "%s %s: read failed", what, path);
		goto out;
	}
	if (n > CANARY_LINK_PEM_MAX) {
		rv = canary_errf(err, errlen, CANARY_ETLS, "%s %s: larger than %d bytes", what,
		                 path, CANARY_LINK_PEM_MAX);
		goto out;
	}
	buf[n] = '\0';
	if (strstr(buf, "-----BEGIN ") == NULL || strstr(buf, marker) == NULL) {
		rv = canary_errf(err, errlen, CANARY_ETLS, "%s %s: no PEM \"%s\" block", what, path,
		                 marker);
		goto out;
	}
	*outp = buf;
	buf = NULL;
out:
	free(buf);
	if (f != NULL) {
		fclose(f);
	}
	return rv;
}

/* Checks with mbedTLS (the library nng's TLS runs on) what nng would only
 * report as a failed handshake later: each PEM parses, the certificates are
 * not expired, this side's is already valid, and the key belongs to the
 * certificate. */
static int
link_check_pems(const struct canary_tls_files *tls, const char *cert, const char *key,
                const char *ca, char *err, size_t errlen)
{
	mbedtls_x509_crt own, cas;
	mbedtls_pk_context pk;
	char why[128];
	int rv = 0;
	int mrv;

	mbedtls_x509_crt_init(&own);
	mbedtls_x509_crt_init(&cas);
	mbedtls_pk_init(&pk);
	mrv = mbedtls_x509_crt_parse(&own, (const unsigned char *)cert, strlen(cert) + 1);
	if (mrv != 0) {
		mbedtls_strerror(mrv, why, sizeof(why));
		rv = canary_errf(err, errlen, CANARY_ETLS, "certificate %s: does not parse (%s)",
		                 tls->cert, why);
		goto out;
	}
	if (mbedtls_x509_time_is_past(&own.valid_to)) {
		rv = canary_errf(err, errlen, CANARY_ETLS,
		                 "certificate %s: expired on %04d-%02d-%02d", tls->cert,
		                 own.valid_to.year, own.valid_to.mon, own.valid_to.day);
		goto out;
	}
	/* A certificate from the future (or a clock in the past, common on a
	 * fresh machine): every handshake would fail with no word why. */
	if (mbedtls_x509_time_is_future(&own.valid_from)) {
		rv = canary_errf(err, errlen, CANARY_ETLS,
		                 "certificate %s: not valid before %04d-%02d-%02d (check this "
		                 "machine's clock)",
		                 tls->cert, own.valid_from.year, own.valid_from.mon,
		                 own.valid_from.day);
		goto out;
	}
	mrv = mbedtls_pk_parse_key(&pk, (const unsigned char *)key, strlen(key) + 1, NULL, 0);
	if (mrv != 0) {
		mbedtls_strerror(mrv, why, sizeof(why));
		rv = canary_errf(
		    err, errlen, CANARY_ETLS,
		    "key %s: does not parse (%s; keys with a passphrase are not supported)",
		    tls->key, why);
		goto out;
	}
	mrv = mbedtls_pk_check_pair(&own.pk, &pk);
	if (mrv != 0) {
		rv = canary_errf(
		    err, errlen, CANARY_ETLS,
		    "certificate %s and key %s: not usable together (the key is not the "
		    "certificate's)",
		    tls->cert, tls->key);
		goto out;
	}
	mrv = mbedtls_x509_crt_parse(&cas, (const unsigned char *)ca, strlen(ca) + 1);
	if (mrv != 0) {
		mbedtls_strerror(mrv, why, sizeof(why));
		rv = canary_errf(err, errlen, CANARY_ETLS, "CA %s: does not parse (%s)", tls->ca,
		                 why);
		goto out;
	}
	if (mbedtls_x509_time_is_past(&cas.valid_to)) {
		rv = canary_errf(err, errlen, CANARY_ETLS, "CA %s: expired on %04d-%02d-%02d",
		                 tls->ca, cas.valid_to.year, cas.valid_to.mon, cas.valid_to.day);
		goto out;
	}
out:
	mbedtls_pk_free(&pk);
	mbedtls_x509_crt_free(&own);
	mbedtls_x509_crt_free(&cas);
	return rv;
}

/* Copies the host of a tls+tcp URL ("tls+tcp://HOST:PORT", "[v6]:PORT")
 * into host; "" when there is none (a listener on all addresses). */
static void
link_url_host(const char *url, char *host, size_t n)
{
	const char *p = strstr(url, "://");
	const char *end;

	host[0] = '\0';
	if (p == NULL) {
		return;
	}
	p += 3;
	if (*p == '[') {
		p++;
		end = strchr(p, ']');
	} else {
		end = strrchr(p, ':');
	}
	if (end == NULL) {
		end = p + strlen(p);
	}
	if ((size_t)(end - p) < n) {
		memcpy(host, p, (size_t)(end - p));
		host[end - p] = '\0';
	}
}

/* A TLS config for one endpoint: own certificate and key, the CA that signs
 * the peers, peer authentication required. */
static int
link_tls_config(const char *url, int server, const struct canary_tls_files *tls,
                nng_tls_config **cfgp, char *err, size_t errlen)
{
	nng_tls_config *cfg = NULL;
	char *cert = NULL, *key = NULL, *ca = NULL;
	char host[256];
	int rv;
	int nrv;

	*cfgp = NULL;
	if (tls == NULL) {
		return canary_errf(err, errlen, CANARY_ETLS,
		                   "%s: tls+tcp needs --cert, --key and --ca (or --insecure with "
		                   "tcp://)",
		                   url);
	}
	rv = link_read_pem("certificate", tls->cert, "CERTIFICATE-----", &cert, err, errlen);
	if (rv == 0) {
		rv = link_read_pem("key", tls->key, "PRIVATE KEY-----", &key, err, errlen);
	}
	if (rv == 0) {
		rv = link_read_pem("CA", tls->ca, "CERTIFICATE-----", &ca, err, errlen);
	}
	if (rv == 0) {
		rv = link_check_pems(tls, cert, key, ca, err, errlen);
	}
	if (rv != 0) {
		goto out;
	}
	nrv = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT);
	if (nrv != 0) {
		rv = canary_errf(err, errlen, CANARY_ETLS, "%s: TLS set-up: %s", url,
		                 nng_strerror(nrv));
		goto out;
	}
	nrv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	if (nrv != 0) {
		rv = canary_errf(err, errlen, CANARY_ETLS, "%s: TLS auth mode: %s", url,
		                 nng_strerror(nrv));
		goto out;
	}
	nrv = nng_tls_config_ca_chain(cfg, ca, NULL);
	if (nrv != 0) {
		rv = canary_errf(err, errlen, CANARY_ETLS,
		                 "CA %s: not a usable PEM certificate (%s)", tls->ca,
		                 nng_strerror(nrv));
		goto out;
	}
	nrv = nng_tls_config_own_cert(cfg, cert, key, NULL);
	if (nrv != 0) {
		rv = canary_errf(err, errlen, CANARY_ETLS,
		                 "certificate %s and key %s: not usable together (%s)", tls->cert,
		                 tls->key, nng_strerror(nrv));
		goto out;
	}
	if (!server) {
		/* The peer's certificate must name the host dialled. */
		link_url_host(url, host, sizeof(host));
		if (host[0] != '\0') {
			nrv = nng_tls_config_server_name(cfg, host);
			if (nrv != 0) {
				rv = canary_errf(err, errlen, CANARY_ETLS, "%s: server name: %s",
				                 url, nng_strerror(nrv));
				goto out;
			}
		}
	}
	*cfgp = cfg;
	cfg = NULL;
out:
	if (cfg != NULL) {
		nng_tls_config_free(cfg);
	}
	free(cert);
	free(key);
	free(ca);
	return rv;
}

static int
link_nng_err(int nrv, const char *what, const char *url, char *err, size_t errlen)
{
	int code = CANARY_EIO;

	if (nrv == NNG_EADDRINVAL || nrv == NNG_EINVAL || nrv == NNG_ENOTSUP) {
		code = CANARY_EINVAL;
	} else if (nrv == NNG_ENOMEM) {
		code = CANARY_ENOMEM;
	}
	return canary_errf(err, errlen, code, "%s %s: %s", what, url, nng_strerror(nrv));
}

/* What listen and dial share: the policy check, the receive cap on s and,
 * for a tls+tcp URL, the TLS config of this side (*cfgp, NULL otherwise;
 * the caller frees it once the endpoint holds its own reference). */
static int
link_prepare(nng_socket s, const char *url, int insecure, int server,
             const struct canary_tls_files *tls, nng_tls_config **cfgp, char *err, size_t errlen)
{
	int rv;
	int nrv;

	*cfgp = NULL;
	rv = canary_link_check_url(url, insecure, err, errlen);
	if (rv != 0) {
		return rv;
	}
	nrv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, CANARY_LINK_RECV_MAX);
	if (nrv != 0) {
		return link_nng_err(nrv, "receive cap for", url, err, errlen);
	}
	if (link_is_tls(url)) {
		return link_tls_config(url, server, tls, cfgp, err, errlen);
	}
	return 0;
}

int
canary_link_listen(nng_socket s, const char *url, int insecure, const struct canary_tls_files *tls,
                   char *err, size_t errlen)
{
	nng_listener l = NNG_LISTENER_INITIALIZER;
	nng_tls_config *cfg = NULL;
	int created = 0;
	int rv;
	int nrv;

	rv = link_prepare(s, url, insecure, 1, tls, &cfg, err, errlen);
	if (rv != 0) {
		goto out;
	}
	nrv = nng_listener_create(&l, s, url);
	if (nrv != 0) {
		rv = link_nng_err(nrv, "listen on", url, err, errlen);
		goto out;
	}
	created = 1;
	if (cfg != NULL && (nrv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg)) != 0) {
		rv = link_nng_err(nrv, "TLS config for", url, err, errlen);
		goto out;
	}
	nrv = nng_listener_start(l, 0);
	if (nrv != 0) {
		rv = link_nng_err(nrv, "listen on", url, err, errlen);
		goto out;
	}
	created = 0; /* the socket owns the listener now */
out:
	if (created) {
		nng_listener_close(l);
	}
	if (cfg != NULL) {
		nng_tls_config_free(cfg); /* the listener holds its own reference */
	}
	return rv;
}

int
canary_link_dial(nng_socket s, const char *url, int insecure, const struct canary_tls_files *tls,
                 char *err, size_t errlen)
{
	nng_dialer d = NNG_DIALER_INITIALIZER;
	nng_tls_config *cfg = NULL;
	int created = 0;
	int rv;
	int nrv;

	rv = link_prepare(s, url, insecure, 0, tls, &cfg, err, errlen);
	if (rv != 0) {
		goto out;
	}
	nrv = nng_dialer_create(&d, s, url);
	if (nrv != 0) {
		rv = link_nng_err(nrv, "dial", url, err, errlen);
		goto out;
	}
	created = 1;
	if (cfg != NULL && (nrv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg)) != 0) {
		rv = link_nng_err(nrv, "TLS config for", url, err, errlen);
		goto out;
	}
	nrv = nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, CANARY_LINK_RECONNMINT_MS);
	if (nrv == 0) {
		nrv = nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, CANARY_LINK_RECONNMAXT_MS);
	}
	if (nrv != 0) {
		rv = link_nng_err(nrv, "reconnect times for", url, err, errlen);
		goto out;
	}
	/* Non-blocking: a peer that is down now is redialled in the background. */
	nrv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	if (nrv != 0) {
		rv = link_nng_err(nrv, "dial", url, err, errlen);
		goto out;
	}
	created = 0;
out:
	if (created) {
		nng_dialer_close(d);
	}
	if (cfg != NULL) {
		nng_tls_config_free(cfg);
	}
	return rv;
}

/* ---- event queue ------------------------------------------------------ */

struct canary_evq {
	pthread_mutex_t lock;
	nng_msg **ring; /* CANARY_EVQ_MAX slots */
	size_t head, count;
	uint64_t dropped; /* pushed while full */
	struct event *ev;
	void (*cb)(nng_msg *msg, void *arg);
	void *arg;
};

static void
evq_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct canary_evq *q = arg;
	nng_msg *batch[CANARY_EVQ_BATCH];
	size_t n;

	(void)fd;
	(void)what;
	/* Take a batch under the lock, deliver it outside. When more is left,
	 * come back after the loop's next poll (a zero timeout, not
	 * event_active, which would run again before any I/O), so a flooded
	 * queue cannot starve sockets and timers. */
	pthread_mutex_lock(&q->lock);
	n = q->count < CANARY_EVQ_BATCH ? q->count : CANARY_EVQ_BATCH;
	for (size_t i = 0; i < n; i++) {
		batch[i] = q->ring[q->head];
		q->head = (q->head + 1) % CANARY_EVQ_MAX;
	}
	q->count -= n;
	if (q->count > 0) {
		struct timeval now = {0, 0};
		event_add(q->ev, &now);
	}
	pthread_mutex_unlock(&q->lock);
	for (size_t i = 0; i < n; i++) {
		q->cb(batch[i], q->arg);
	}
}

int
canary_evq_new(struct event_base *base, void (*cb)(nng_msg *msg, void *arg), void *arg,
               struct canary_evq **qp)
{
	struct canary_evq *q;

	*qp = NULL;
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		return CANARY_ENOMEM;
	}
	q->ring = calloc(CANARY_EVQ_MAX, sizeof(*q->ring));
	if (q->ring == NULL) {
		free(q);
		return CANARY_ENOMEM;
	}
	if (pthread_mutex_init(&q->lock, NULL) != 0) {
		free(q->ring);
		free(q);
		return CANARY_ENOMEM;
	}
	q->cb = cb;
	q->arg = arg;
	q->ev = event_new(base, -1, 0, evq_event_cb, q);
	if (q->ev == NULL) {
		pthread_mutex_destroy(&q->lock);
		free(q->ring);
		free(q);
		return CANARY_ENOMEM;
	}
	*qp = q;
	return 0;
}

void
canary_evq_push(struct canary_evq *q, nng_msg *msg)
{
	pthread_mutex_lock(&q->lock);
	if (q->count >= CANARY_EVQ_MAX) {
		q->dropped++;
		pthread_mutex_unlock(&q->lock);
		nng_msg_free(msg);
		return;
	}
	q->ring[(q->head + q->count) % CANARY_EVQ_MAX] = msg;
	q->count++;
	/* event_active is safe from other threads once libevent threading is
	 * on (evthread_use_pthreads before the base was made). */
	event_active(q->ev, EV_READ, 0);
	pthread_mutex_unlock(&q->lock);
}

uint64_t
canary_evq_dropped(struct canary_evq *q)
{
	uint64_t n;

	pthread_mutex_lock(&q->lock);
	n = q->dropped;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void
canary_evq_free(struct canary_evq *q)
{
	if (q == NULL) {
		return;
	}
	event_free(q->ev);
	for (size_t i = 0; i < q->count; i++) {
		nng_msg_free(q->ring[(q->head + i) % CANARY_EVQ_MAX]);
	}
	pthread_mutex_destroy(&q->lock);
	free(q->ring);
	free(q);
}
