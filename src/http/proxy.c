#include "proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const unsigned char v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static int is_v4(const struct ipaddr *a)
{
	return memcmp(a->b, v4mapped, 12) == 0;
}

int ipaddr_parse(const char *s, size_t n, struct ipaddr *out)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	struct in_addr v4;
	if (inet_pton(AF_INET, tmp, &v4) == 1) {
		memcpy(out->b, v4mapped, 12);
		memcpy(out->b + 12, &v4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, tmp, out->b) == 1 ? 0 : -1;
}

int ipaddr_from_sockaddr(const struct sockaddr *sa, struct ipaddr *out)
{
	if (sa && sa->sa_family == AF_INET) {
		memcpy(out->b, v4mapped, 12);
		memcpy(out->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return 0;
	}
	if (sa && sa->sa_family == AF_INET6) {
		memcpy(out->b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
		return 0;
	}
	memset(out->b, 0, sizeof(out->b));
	return -1;
}

void ipaddr_format(const struct ipaddr *a, char *out, size_t cap)
{
	const char *ok = is_v4(a) ? inet_ntop(AF_INET, a->b + 12, out, (socklen_t)cap)
				  : inet_ntop(AF_INET6, a->b, out, (socklen_t)cap);
	if (!ok && cap)
		snprintf(out, cap, "unknown");
}

void ipaddr_limit_key(const struct ipaddr *a, struct ipaddr *out)
{
	*out = *a;
	if (!is_v4(a))
		memset(out->b + 8, 0, 8);
}

void ipaddr_format_limit_key(const struct ipaddr *a, char *out, size_t cap)
{
	struct ipaddr k;
	ipaddr_limit_key(a, &k);
	ipaddr_format(&k, out, cap);
	size_t n = strlen(out);
	if (!is_v4(a) && n < cap)
		snprintf(out + n, cap - n, "/64");
}

static int in_net(const struct ipaddr *a, const struct ipaddr *net, int bits)
{
	int full = bits / 8, rest = bits % 8;
	if (memcmp(a->b, net->b, (size_t)full) != 0)
		return 0;
	if (!rest)
		return 1;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a->b[full] & mask) == (net->b[full] & mask);
}

int proxies_contains(const struct proxies *p, const struct ipaddr *a)
{
	for (int i = 0; p && i < p->n; i++)
		if (in_net(a, &p->nets[i].a, p->nets[i].bits))
			return 1;
	return 0;
}

/* One entry of the list: "addr" or "addr/len". */
static int parse_net(const char *s, size_t n, struct ipaddr *a, int *bits)
{
	const char *slash = memchr(s, '/', n);
	size_t alen = slash ? (size_t)(slash - s) : n;
	if (ipaddr_parse(s, alen, a))
		return -1;
	int max = is_v4(a) ? 32 : 128;
	int len = max;
	if (slash) {
		const char *d = slash + 1, *end = s + n;
		if (d == end || end - d > 3)
			return -1;
		len = 0;
		for (; d < end; d++) {
			if (*d < '0' || *d > '9')
				return -1;
			len = len * 10 + (*d - '0');
		}
		if (len > max)
			return -1;
	}
	*bits = len + (max == 32 ? 96 : 0);
	/* Clear the host bits, so "10.1.2.3/8" means 10.0.0.0/8. */
	for (int i = *bits; i < 128; i++)
		a->b[i / 8] &= (unsigned char)~(0x80 >> (i % 8));
	return 0;
}

int proxies_parse(struct proxies *p, const char *list, struct err *e)
{
	p->n = 0;
	p->header = PROXY_XFF;
	const char *s = list ? list : "";
	while (*s) {
		while (*s == ' ' || *s == ',' || *s == '\t')
			s++;
		size_t n = strcspn(s, ", \t");
		if (!n)
			break;
		if (p->n >= PROXY_MAX_NETS)
			return err_set(e, ERR_INVALID, "BOOKD_TRUSTED_PROXIES: more than %d entries", PROXY_MAX_NETS);
		if (parse_net(s, n, &p->nets[p->n].a, &p->nets[p->n].bits))
			return err_set(e, ERR_INVALID, "BOOKD_TRUSTED_PROXIES: \"%.*s\" is not an address or CIDR block",
				       (int)(n > 64 ? 64 : n), s);
		p->n++;
		s += n;
	}
	return 0;
}

static const char *const header_names[] = { "X-Forwarded-For", "Forwarded", "X-Real-IP" };

int proxies_set_header(struct proxies *p, const char *name, struct err *e)
{
	if (!name || !*name) {
		p->header = PROXY_XFF;
		return 0;
	}
	for (int i = 0; i < 3; i++)
		if (strcasecmp(name, header_names[i]) == 0) {
			p->header = (enum proxy_header)i;
			return 0;
		}
	return err_set(e, ERR_INVALID,
		       "BOOKD_FORWARDED_HEADER=\"%.64s\" must be x-forwarded-for, forwarded or x-real-ip", name);
}

const char *proxies_header_name(const struct proxies *p)
{
	return header_names[p->header];
}

/* One hop as a proxy wrote it: "1.2.3.4", "1.2.3.4:80", "::1", "[::1]:80",
 * optionally quoted (Forwarded). */
static int parse_hop(const char *s, size_t n, struct ipaddr *a)
{
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
		s++, n -= 2;
	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		return close ? ipaddr_parse(s + 1, (size_t)(close - s - 1), a) : -1;
	}
	const char *colon = memchr(s, ':', n);
	if (colon && !memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)))
		n = (size_t)(colon - s); /* "1.2.3.4:80": one colon is a port */
	return ipaddr_parse(s, n, a);
}

/* The for= value of one Forwarded element ("for=1.2.3.4;proto=https"). */
static int forwarded_for(const char *s, size_t n, const char **v, size_t *vn)
{
	const char *end = s + n;
	while (s < end) {
		const char *semi = memchr(s, ';', (size_t)(end - s));
		const char *pe = semi ? semi : end;
		while (s < pe && (*s == ' ' || *s == '\t'))
			s++;
		if (pe - s > 4 && strncasecmp(s, "for=", 4) == 0) {
			*v = s + 4;
			*vn = (size_t)(pe - s - 4);
			return 0;
		}
		s = semi ? semi + 1 : end;
	}
	return -1;
}

/* Walks the hops of `lines` from the right; returns 1 when it decided. */
static int walk(const struct proxies *p, const char *const *lines, int nlines, int forwarded, struct ipaddr *cur)
{
	for (int l = nlines - 1; l >= 0; l--) {
		const char *s = lines[l];
		size_t end = strlen(s);
		while (end > 0) {
			size_t start = end;
			while (start > 0 && s[start - 1] != ',')
				start--;
			const char *hop = s + start;
			size_t n = end - start;
			end = start ? start - 1 : 0;
			if (forwarded && forwarded_for(s + start, n, &hop, &n))
				return 1; /* an element without for=: nothing more to learn */
			struct ipaddr a;
			if (parse_hop(hop, n, &a))
				return 1; /* "unknown", an obfuscated name, garbage: stop here */
			*cur = a;
			if (!proxies_contains(p, &a))
				return 1;
		}
	}
	return 0;
}

void proxies_client(const struct proxies *p, const struct ipaddr *peer, const char *const *lines, int nlines,
		    struct ipaddr *out)
{
	*out = *peer;
	if (!proxies_contains(p, peer) || !nlines)
		return;
	walk(p, lines, nlines, p->header == PROXY_FORWARDED, out);
}
