#include "listener.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/log.h"

int listener_open(struct listener *l, const char *host, int port, int backlog, struct err *e)
{
	*l = (struct listener){ .fd = -1, .wake = { -1, -1 } };
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *ai = NULL;
	char service[16];
	snprintf(service, sizeof(service), "%d", port);
	int gai = getaddrinfo(host, service, &hints, &ai);
	if (gai)
		return err_set(e, ERR_INVALID, "cannot resolve BOOKD_HOST %s: %s", host, gai_strerror(gai));
	int one = 1, rc = 0;
	l->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0 || setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l->fd, ai->ai_addr, ai->ai_addrlen) || listen(l->fd, backlog) || pipe2(l->wake, O_CLOEXEC)) {
		rc = err_set(e, ERR_UNAVAILABLE, "cannot listen on %s:%d: %s", host, port, strerror(errno));
		goto out;
	}
	l->family = ai->ai_family;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(l->fd, (struct sockaddr *)&ss, &len) == 0)
		l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
							 : ((struct sockaddr_in *)&ss)->sin_port);
out:
	freeaddrinfo(ai);
	if (rc)
		listener_stop(l);
	return rc;
}

static void *accept_loop(void *arg)
{
	struct listener *l = arg;
	for (;;) {
		struct pollfd p[2] = { { .fd = l->fd, .events = POLLIN }, { .fd = l->wake[0], .events = POLLIN } };
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("accept: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		/* Everything waiting, then poll again. */
		for (;;) {
			struct sockaddr_storage ss;
			socklen_t len = sizeof(ss);
			int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0) {
				if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
					/* Out of descriptors: the backlog waits; try again shortly
					 * rather than spin on a socket that stays readable. */
					log_warn("accept: %s", strerror(errno));
					struct pollfd w = { .fd = l->wake[0], .events = POLLIN };
					if (poll(&w, 1, 100) > 0)
						return NULL;
				}
				break; /* EAGAIN, or a connection reset before we took it */
			}
			struct MHD_Daemon *d = NULL;
			void *token = l->admit(l->ctx, fd, (struct sockaddr *)&ss, len, &d);
			if (!token) {
				close(fd);
				continue;
			}
			/* On refusal (its own limits) libmicrohttpd closes fd. */
			if (MHD_add_connection(d, fd, (struct sockaddr *)&ss, len) != MHD_YES)
				l->release(l->ctx, token);
		}
	}
	return NULL;
}

int listener_start(struct listener *l, listener_admit_fn admit, listener_release_fn release, void *ctx,
		   struct err *e)
{
	l->admit = admit;
	l->release = release;
	l->ctx = ctx;
	if (pthread_create(&l->thread, NULL, accept_loop, l))
		return err_set(e, ERR_INTERNAL, "cannot start the accepting thread");
	pthread_setname_np(l->thread, "bookd-accept");
	l->started = 1;
	return 0;
}

void listener_stop(struct listener *l)
{
	if (l->started) {
		if (write(l->wake[1], "x", 1) < 0)
			log_warn("accept: cannot wake the accepting thread: %s", strerror(errno));
		pthread_join(l->thread, NULL);
		l->started = 0;
	}
	if (l->fd >= 0)
		close(l->fd);
	for (int i = 0; i < 2; i++)
		if (l->wake[i] >= 0)
			close(l->wake[i]);
	l->fd = l->wake[0] = l->wake[1] = -1;
}
