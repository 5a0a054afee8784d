#include "conns.h"

#include <string.h>
#include <sys/socket.h>

#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"

static unsigned bucket_of(const struct ipaddr *ip)
{
	uint32_t h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = (h ^ ip->b[i]) * 16777619u;
	return h % CONNS_BUCKETS;
}

/* The count of `ip`'s group (an IPv6 /64, or the IPv4 address). */
static struct ipcount **find(struct conns *cs, const struct ipaddr *ip)
{
	struct ipaddr key;
	ipaddr_limit_key(ip, &key);
	struct ipcount **pp = &cs->buckets[bucket_of(&key)];
	while (*pp && memcmp((*pp)->ip.b, key.b, 16) != 0)
		pp = &(*pp)->next;
	return pp;
}

void conns_init(struct conns *cs, long max_total, int per_ip, int request_timeout_s, const struct proxies *trusted)
{
	memset(cs, 0, sizeof(*cs));
	pthread_mutex_init(&cs->lock, NULL);
	cs->max_total = max_total;
	cs->per_ip = per_ip;
	/* Room above the soft limit for the 503s to be said. */
	cs->per_ip_hard = per_ip + (per_ip / 4 > 4 ? per_ip / 4 : 4);
	cs->request_us = (int64_t)request_timeout_s * 1000000;
	cs->grace_us = (int64_t)CONNS_START_GRACE_S * 1000000;
	cs->trusted = trusted;
}

void conns_destroy(struct conns *cs)
{
	for (struct conn *c = cs->head, *next; c; c = next) {
		next = c->next;
		xfree(c);
	}
	cs->head = NULL;
	for (int i = 0; i < CONNS_BUCKETS; i++)
		for (struct ipcount *c = cs->buckets[i], *next; c; c = next) {
			next = c->next;
			xfree(c);
		}
	pthread_mutex_destroy(&cs->lock);
}

int conns_admit(struct conns *cs, const struct ipaddr *ip)
{
	if (proxies_contains(cs->trusted, ip)) {
		pthread_mutex_lock(&cs->lock);
		int ok = !cs->max_hard || cs->total < cs->max_hard;
		pthread_mutex_unlock(&cs->lock);
		return ok ? 0 : -1;
	}
	pthread_mutex_lock(&cs->lock);
	struct ipcount *c = *find(cs, ip);
	int ok = (!c || c->n < cs->per_ip_hard) && (!cs->max_hard || cs->total < cs->max_hard);
	pthread_mutex_unlock(&cs->lock);
	return ok ? 0 : -1;
}

struct conn *conns_open(struct conns *cs, int fd, const struct ipaddr *ip)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->fd = fd;
	c->ip = *ip;
	c->exempt = proxies_contains(cs->trusted, ip);
	c->opened_us = time_mono_us();
	atomic_store(&c->deadline_us, c->opened_us + cs->request_us);
	pthread_mutex_lock(&cs->lock);
	int n = 0;
	if (!c->exempt) {
		struct ipcount **pp = find(cs, ip);
		if (!*pp && (*pp = xcalloc(1, sizeof(**pp))))
			ipaddr_limit_key(ip, &(*pp)->ip);
		if (*pp)
			n = ++(*pp)->n;
	}
	cs->total++;
	c->over = n > cs->per_ip || cs->total > cs->max_total;
	c->next = cs->head;
	if (cs->head)
		cs->head->prev = c;
	cs->head = c;
	pthread_mutex_unlock(&cs->lock);
	return c;
}

struct conn *conns_take(struct conns *cs, int fd)
{
	pthread_mutex_lock(&cs->lock);
	struct conn *c = cs->head; /* new connections are at the head */
	while (c && (c->fd != fd || c->started))
		c = c->next;
	if (c)
		c->started = 1;
	pthread_mutex_unlock(&cs->lock);
	return c;
}

/* Out of the counts and the list (under the lock); the caller frees it. */
static void unlink_conn(struct conns *cs, struct conn *c)
{
	if (!c->exempt) {
		struct ipcount **pp = find(cs, &c->ip);
		if (*pp && --(*pp)->n <= 0) {
			struct ipcount *dead = *pp;
			*pp = dead->next;
			xfree(dead);
		}
	}
	cs->total--;
	if (c->prev)
		c->prev->next = c->next;
	else
		cs->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->load)
		atomic_fetch_sub(c->load, 1);
}

void conns_close(struct conns *cs, struct conn *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&cs->lock);
	unlink_conn(cs, c);
	pthread_mutex_unlock(&cs->lock);
	xfree(c);
}

void conns_refused(struct conns *cs, struct conn *c)
{
	pthread_mutex_lock(&cs->lock);
	struct conn *it = cs->head;
	while (it && it != c)
		it = it->next;
	if (it)
		unlink_conn(cs, it);
	pthread_mutex_unlock(&cs->lock);
	if (it)
		xfree(it);
}

void conns_request_in(struct conns *cs, struct conn *c)
{
	(void)cs;
	if (c)
		atomic_store(&c->deadline_us, 0);
}

void conns_request_next(struct conns *cs, struct conn *c)
{
	if (c)
		atomic_store(&c->deadline_us, time_mono_us() + cs->request_us);
}

int conns_late(const struct conn *c, int64_t now_us)
{
	int64_t d = c ? atomic_load(&c->deadline_us) : 0;
	return d && d <= now_us;
}

int conns_expire(struct conns *cs, int64_t now_us)
{
	int n = 0, dropped = 0;
	pthread_mutex_lock(&cs->lock);
	for (struct conn *c = cs->head, *next; c; c = next) {
		next = c->next;
		if (!c->started) {
			/* Its descriptor may already be another socket's: never
			 * touched; past the grace it only leaves the counts. */
			if (now_us - c->opened_us >= cs->grace_us) {
				unlink_conn(cs, c);
				xfree(c);
				dropped++;
			}
		} else if (conns_late(c, now_us)) {
			atomic_store(&c->deadline_us, 0); /* once */
			shutdown(c->fd, SHUT_RDWR);
			n++;
		}
	}
	pthread_mutex_unlock(&cs->lock);
	if (dropped)
		log_warn("forgot %d accepted connection(s) that libmicrohttpd never started", dropped);
	return n;
}
