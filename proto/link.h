/*
 * link.h: the nng transport between controller and agents, shared by both.
 *
 * Policy: `tls+tcp://` with mutual TLS (each side presents a certificate and
 * verifies the peer's against its CA) unless `insecure` is set; `tcp://` and
 * `ipc://` are refused without `insecure`. nng 1.5.2 cannot say which
 * certificate a peer used, so agent ids and regions are claims: give agents a
 * CA of their own.
 *
 * Threads: nng completes aio on its own threads. struct canary_evq carries
 * messages from those threads to one libevent loop (a locked queue plus
 * event_active), so program state is only touched on the loop thread.
 */
#ifndef CANARY_LINK_H
#define CANARY_LINK_H

#include <stddef.h>

#include <event2/event.h>
#include <nng/nng.h>

#define CANARY_LINK_RECV_MAX      (1024 * 1024) /* = CANARY_MSG_MAX_BYTES */
#define CANARY_LINK_RECONNMINT_MS 100
#define CANARY_LINK_RECONNMAXT_MS 5000

struct canary_tls_files {
	const char *cert; /* PEM certificate chain of this side */
	const char *key;  /* PEM private key */
	const char *ca;   /* PEM CA that signed the peers' certificates */
};

/* canary_link_check_url: 0 if url may be used under the policy above, else
 * CANARY_EDENIED (plain transport without insecure) or CANARY_EINVAL
 * (unknown scheme), with the reason in err. */
int canary_link_check_url(const char *url, int insecure, char *err, size_t errlen);

/* canary_link_listen / canary_link_dial: start a listener or a dialer on s
 * for url. For tls+tcp, tls must name all three files (mode server for a
 * listener, client for a dialer; peers must authenticate). Dialers redial
 * with backoff between CANARY_LINK_RECONNMINT_MS and ..._RECONNMAXT_MS and
 * never block start-up on a peer being down. The receive size cap
 * CANARY_LINK_RECV_MAX is set on s. Returns 0 or a canary error with the url
 * and nng's words in err. */
int canary_link_listen(nng_socket s, const char *url, int insecure,
                       const struct canary_tls_files *tls, char *err, size_t errlen);
int canary_link_dial(nng_socket s, const char *url, int insecure,
                     const struct canary_tls_files *tls, char *err, size_t errlen);

/* An event queue from nng threads to a libevent loop. */
struct canary_evq;

/* canary_evq_new: cb(msg, arg) is called on base's thread once per pushed
 * message, in order; cb takes ownership of msg. */
int canary_evq_new(struct event_base *base, void (*cb)(nng_msg *msg, void *arg), void *arg,
                   struct canary_evq **qp);
/* canary_evq_push: from any thread; takes ownership of msg. */
void canary_evq_push(struct canary_evq *q, nng_msg *msg);
/* canary_evq_free: drops queued messages. Accepts NULL. Call on the loop
 * thread after the producers have stopped. */
void canary_evq_free(struct canary_evq *q);

#endif /* CANARY_LINK_H */
