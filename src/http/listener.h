/*
 * The listening socket and the thread that accepts on it, handing each
 * connection to a libmicrohttpd daemon chosen by the caller
 * (MHD_add_connection, which is thread-safe with the daemon's own thread: the
 * connection is queued and the thread woken).
 *
 * bookd accepts itself rather than letting libmicrohttpd do it because
 * stopping to accept must be safe: MHD_quiesce_daemon (0.9.75) removes the
 * listening socket from each pool thread's epoll set while those threads may
 * be removing it themselves, and panics when it loses that race ("Failed to
 * remove listen FD from epoll set"). Here quiescing is joining this thread and
 * closing the socket; libmicrohttpd never sees a listening socket at all.
 * It also places each connection: on the least loaded of the server's
 * daemons, never on one whose thread is inside a handler, where
 * MHD_add_connection on a pool would place it by descriptor number.
 */
#ifndef BOOKD_LISTENER_H
#define BOOKD_LISTENER_H

#include <pthread.h>
#include <sys/socket.h>

#include "../core/err.h"

struct MHD_Daemon;

/* Called on the accepting thread for each connection: a token for it and, in
 * *d, the daemon to hand it to; or NULL to refuse it (the listener closes
 * it). `release` gives a token back when the daemon refuses the connection
 * after all. */
typedef void *(*listener_admit_fn)(void *ctx, int fd, const struct sockaddr *sa, socklen_t len,
				   struct MHD_Daemon **d);
typedef void (*listener_release_fn)(void *ctx, void *token);

struct listener {
	int fd;
	listener_admit_fn admit;
	listener_release_fn release;
	void *ctx;
	int wake[2]; /* written once by listener_stop */
	int family;
	int port; /* the port bound (useful with port 0) */
	pthread_t thread;
	int started;
};

/* Binds and listens (SO_REUSEADDR, the given backlog); fd -1 before. */
int listener_open(struct listener *l, const char *host, int port, int backlog, struct err *e) WUR;
/* Starts accepting, each connection admitted (and placed) by `admit`. */
int listener_start(struct listener *l, listener_admit_fn admit, listener_release_fn release, void *ctx,
		   struct err *e) WUR;
/* Stops accepting: joins the thread and closes the socket (new connections
 * are refused from then on). Idempotent; safe after a failed open. */
void listener_stop(struct listener *l);

#endif
