/*
 * Client addresses behind reverse proxies. BOOKD_TRUSTED_PROXIES is a list of
 * CIDR blocks; a request whose peer is in it names its client in the one
 * header BOOKD_FORWARDED_HEADER names: X-Forwarded-For (the default),
 * Forwarded (for=) or X-Real-IP. Only that header is read, never another
 * that a client may have sent through the proxy, so the proxy must set or
 * append exactly that one. Each proxy appends the address it received the
 * request from, so the list is read from the right: the client is the
 * right-most address that is not itself a trusted proxy. What a client wrote
 * to the left of that is never believed, and a peer outside the list is the
 * client, whatever its headers say.
 *
 * Limits per client address (connections, rate limits) count an IPv6
 * address with its /64, which one subscriber usually holds whole, and an
 * IPv4 address alone (IPv4-mapped IPv6 is IPv4).
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

enum proxy_header { PROXY_XFF, PROXY_FORWARDED, PROXY_XREALIP };

struct proxies {
	int n;
	enum proxy_header header; /* the one that names the client */
	struct {
		struct ipaddr a;
		int bits; /* prefix length over the 16 bytes */
	} nets[PROXY_MAX_NETS];
};

/* "10.0.0.0/8, 192.168.1.7, fd00::/8": every entry is checked; the first bad
 * one is named in e. An empty list trusts nobody. */
int proxies_parse(struct proxies *p, const char *list, struct err *e) WUR;
int proxies_contains(const struct proxies *p, const struct ipaddr *a);
/* BOOKD_FORWARDED_HEADER: "x-forwarded-for" (also for NULL or ""),
 * "forwarded" or "x-real-ip", any case. */
int proxies_set_header(struct proxies *p, const char *name, struct err *e) WUR;
/* The header's name as sent ("X-Forwarded-For"). */
const char *proxies_header_name(const struct proxies *p);

/* A literal address, "1.2.3.4" or "::1" (no port, no brackets): 0 or -1. */
int ipaddr_parse(const char *s, size_t n, struct ipaddr *out);
int ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *out);
/* As text: dotted quad for IPv4 (mapped or not), RFC 5952 otherwise. */
void ipaddr_format(const struct ipaddr *a, char *out, size_t cap);
/* The group an address is limited with: an IPv6 address with its low 64
 * bits cleared, an IPv4 address as it is. */
void ipaddr_limit_key(const struct ipaddr *a, struct ipaddr *out);
/* That group as text: "192.0.2.1", "2001:db8:1:2::/64". */
void ipaddr_format_limit_key(const struct ipaddr *a, char *out, size_t cap);

/* The client of a request from `peer`: lines[0..nlines) are the lines of
 * the header p->header names, in the order received. */
void proxies_client(const struct proxies *p, const struct ipaddr *peer, const char *const *lines, int nlines,
		    struct ipaddr *out);

#endif
