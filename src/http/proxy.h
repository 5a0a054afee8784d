/*
 * Client addresses behind reverse proxies. BOOKD_TRUSTED_PROXIES is a list of
 * CIDR blocks; a request whose peer is in it names its client in
 * X-Forwarded-For (or, when that is absent, in Forwarded: for=). Each proxy
 * appends the address it received the request from, so the list is read from
 * the right: the client is the right-most address that is not itself a
 * trusted proxy. What a client wrote to the left of that is never believed,
 * and a peer outside the list is the client, whatever its headers say.
 *
 * Addresses are kept as 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d),
 * so one comparison serves both families and a dual-stack listener's mapped
 * peers match IPv4 blocks.
 */
#ifndef BOOKD_PROXY_H
#define BOOKD_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

#include "../core/err.h"

#define PROXY_MAX_NETS 32

struct ipaddr {
	unsigned char b[16];
};

struct proxies {
	int n;
	struct {
		struct ipaddr a;
		int bits; /* prefix length over the 16 bytes */
	} nets[PROXY_MAX_NETS];
};

/* "10.0.0.0/8, 192.168.1.7, fd00::/8": every entry is checked; the first bad
 * one is named in e. An empty list trusts nobody. */
int proxies_parse(struct proxies *p, const char *list, struct err *e) WUR;
int proxies_contains(const struct proxies *p, const struct ipaddr *a);

/* A literal address, "1.2.3.4" or "::1" (no port, no brackets): 0 or -1. */
int ipaddr_parse(const char *s, size_t n, struct ipaddr *out);
int ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *out);
/* As text: dotted quad for IPv4 (mapped or not), RFC 5952 otherwise. */
void ipaddr_format(const struct ipaddr *a, char *out, size_t cap);

/* The client of a request from `peer`: xff[0..nxff) are the X-Forwarded-For
 * header lines in the order received, fwd[0..nfwd) the Forwarded lines. */
void proxies_client(const struct proxies *p, const struct ipaddr *peer, const char *const *xff, int nxff,
		    const char *const *fwd, int nfwd, struct ipaddr *out);

#endif
