/*
 * Connection accounting for the HTTP edge: how many connections are open in
 * all and per client address, and by when each must have delivered its
 * request.
 *
 * An address is counted with its group: an IPv6 address with its /64 (what
 * one subscriber is usually given), an IPv4 address alone.
 *
 * Limits come in pairs. At the soft limits (BOOKD_MAX_CONNECTIONS, and
 * BOOKD_MAX_CONNECTIONS_PER_IP for one address) a new connection is still
 * accepted but marked `over`: as soon as its request head is in it is
 * answered 503 and closed, so a client learns why. A little above them the
 * hard limits refuse the connection at accept (libmicrohttpd's connection
 * limit, and conns_admit for one address, both at accept), which is what bounds a client that
 * never finishes a request head. libmicrohttpd's own connection limit is set
 * well above ours, as a backstop that never refuses first.
 *
 * The request deadline (BOOKD_REQUEST_TIMEOUT) runs from the connection's
 * start, or from the end of its previous response, until the request's head
 * and body are in; libmicrohttpd's own timeout is an idle timeout that every
 * byte resets. conns_expire, called by a ticker, shuts down the sockets whose
 * deadline has passed; libmicrohttpd then sees the connection end and cleans
 * it up on its own thread. The socket is only shut down, never closed, and
 * under the lock that conns_close takes before libmicrohttpd closes it, so a
 * reused descriptor is never touched.
 *
 * A connection handed to libmicrohttpd is set up later on its thread
 * (conns_take); should that fail there, libmicrohttpd closes the socket and
 * tells nobody. So a connection not yet started is never shut down (its
 * descriptor number may already be another socket's), and one still not
 * started CONNS_START_GRACE_S seconds after accept is dropped from the
 * counts, its descriptor untouched.
 */
#ifndef BOOKD_CONNS_H
#define BOOKD_CONNS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "proxy.h"

#define CONNS_BUCKETS 1024
#define CONNS_START_GRACE_S 5

struct conn {
	struct conn *next, *prev; /* in conns.head (under lock) */
	int fd;
	struct ipaddr ip;
	int exempt; /* a trusted proxy: no per-address limit */
	int over;   /* over a soft limit when it arrived: answer 503 */
	int started; /* libmicrohttpd has taken it (conns_take) */
	void *worker; /* the server's worker holding it */
	atomic_long *load; /* decremented when it leaves the counts; or NULL */
	int64_t opened_us; /* accepted then (monotonic) */
	_Atomic int64_t deadline_us; /* the request must be in by then (monotonic); 0: none */
};

struct ipcount {
	struct ipcount *next;
	struct ipaddr ip;
	int n;
};

struct conns {
	pthread_mutex_t lock;
	struct conn *head;
	long total;
	struct ipcount *buckets[CONNS_BUCKETS];
	long max_total;		/* soft */
	long max_hard;		/* refused at accept from here; 0: no limit */
	int per_ip, per_ip_hard;
	int64_t request_us;
	int64_t grace_us; /* CONNS_START_GRACE_S */
	const struct proxies *trusted;
};

void conns_init(struct conns *cs, long max_total, int per_ip, int request_timeout_s, const struct proxies *trusted);
void conns_destroy(struct conns *cs);
/* At accept: 0 when a connection from `ip` may be taken, -1 over a hard
 * limit (per address, unless a trusted proxy; or max_hard in all). */
int conns_admit(struct conns *cs, const struct ipaddr *ip);
/* A connection was accepted (NULL when out of memory: refuse it). Counted
 * from here, on the accepting thread, so that the next accept already sees
 * it; libmicrohttpd picks it up later, on its own thread, by conns_take. */
struct conn *conns_open(struct conns *cs, int fd, const struct ipaddr *ip);
/* The accepted, not yet started connection on `fd`, now started; NULL if none. */
struct conn *conns_take(struct conns *cs, int fd);
void conns_close(struct conns *cs, struct conn *c);
/* libmicrohttpd refused c at once (MHD_add_connection failed): out of the
 * counts, unless the ticker has already dropped it. */
void conns_refused(struct conns *cs, struct conn *c);
/* The request is in (deadline off), or a new one may start (deadline on). */
void conns_request_in(struct conns *cs, struct conn *c);
void conns_request_next(struct conns *cs, struct conn *c);
/* 1 when c's request is late. */
int conns_late(const struct conn *c, int64_t now_us);
/* Shuts down the started connections whose deadline has passed (returns how
 * many), and drops those never started within the grace. */
int conns_expire(struct conns *cs, int64_t now_us);

#endif
