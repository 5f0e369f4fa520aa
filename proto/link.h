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
 * libevent threading must be on (evthread_use_pthreads()) before that loop's
 * event_base is made.
 *
 * TLS: a dialer checks that the listener's certificate names the host of the
 * URL. mbedTLS 2.28 matches the subject alternative DNS names (or the common
 * name when there are none) and not IP entries: a certificate for an address
 * carries it as a DNS name too, e.g. subjectAltName DNS:127.0.0.1.
 */
#ifndef CANARY_LINK_H
#define CANARY_LINK_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <nng/nng.h>

#define CANARY_LINK_RECV_MAX      (1024 * 1024) /* = CANARY_MSG_MAX_BYTES */
#define CANARY_LINK_RECONNMINT_MS 100
#define CANARY_LINK_RECONNMAXT_MS 5000
#define CANARY_LINK_URL_MAX       1024         /* bytes of a link URL, with the NUL */
#define CANARY_LINK_PEM_MAX       (256 * 1024) /* bytes of one PEM file */
#define CANARY_EVQ_MAX            16384        /* messages waiting for the loop; more are dropped */
#define CANARY_EVQ_BATCH          64           /* messages delivered per loop wake-up */

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
 * message, in order; cb takes ownership of msg. The queue's event is only
 * ever made active, never added: it does not by itself keep
 * event_base_dispatch running (a program's signal events do). */
int canary_evq_new(struct event_base *base, void (*cb)(nng_msg *msg, void *arg), void *arg,
                   struct canary_evq **qp);
/* canary_evq_push: from any thread; takes ownership of msg. When
 * CANARY_EVQ_MAX messages are already waiting, msg is freed and counted as
 * dropped (a peer flooding the socket cannot grow memory without bound). */
void canary_evq_push(struct canary_evq *q, nng_msg *msg);
/* canary_evq_dropped: messages dropped so far because the queue was full. */
uint64_t canary_evq_dropped(struct canary_evq *q);
/* canary_evq_free: drops queued messages. Accepts NULL. Call on the loop
 * thread after the producers have stopped. */
void canary_evq_free(struct canary_evq *q);

#endif /* CANARY_LINK_H */
