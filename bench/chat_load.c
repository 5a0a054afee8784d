/*
 * bench/chat.sh's load: a fake language model and the chat client in one
 * process, so that what the benchmark itself costs stays out of the figures
 * (its predecessors, two Python programs, added more latency than bookd).
 *
 *   chat_load PORT [CHUNKS]        the master key in BENCH_API_KEY
 *
 * Two threads, each on its own epoll loop, both stamping CLOCK_MONOTONIC:
 *   fake    127.0.0.1:PORT. POST /v1/chat/completions answers as an
 *           OpenAI-compatible model: a fixed answer in CHUNKS deltas, streamed
 *           (SSE, chunked, keep-alive) or whole (Content-Length, with usage).
 *           A paced phase delays each delta on a timer heap (one timerfd):
 *           the loop never sleeps. Also the script's requests: GET /health;
 *           GET /run?key&mode&chunks&delay_ms&clients&warmup&duration&bookd
 *           [&stagger_ms] runs one phase and is answered with its figures (JSON, 200; 422
 *           if any answer failed) when it is over; GET /report prints the
 *           phases side by side and answers with them (see ctl_report()).
 *   client  CLIENTS keep-alive connections to bookd, each asking POST
 *           /api/v1/chatbot/query again as soon as it has its answer (closed
 *           loop, a new session each time), for WARMUP + DURATION seconds.
 *           All start at once, or spread evenly over STAGGER ms: with a
 *           paced model every answer takes as long, so chats that start
 *           together keep asking together, in bursts.
 *
 * Every question ends in `bench-id:PxN` (phase P, answer N). bookd passes the
 * question on as the last user message, so the fake finds N in the prompt and
 * stamps answer N's slot in the phase's table, beside the client's stamps.
 * The table is read only when the phase is over, after a handshake with the
 * fake's loop: by then every stamp it took is visible, and it writes no more.
 *
 * Stamps (ns, monotonic; "kernel" = when the kernel received the bytes, from
 * SO_TIMESTAMPNS, which is CLOCK_REALTIME: moved onto the monotonic clock by
 * its age at the read):
 *   t0             client, just before writing the request
 *   end, end_k     client, the read that brought the response's last byte
 *   first, first_k client, the read that completed the first `delta` event
 *   req            fake, kernel time of the read that completed the model call
 *   f_first        fake, just before writing the first delta (whole answer)
 *   f_last         fake, once the last byte is handed to the kernel
 * added = (end - t0) - (f_last - req): the time the fake took, from the moment
 * the call reached its socket, is the model's, not bookd's.
 *
 * Every buffer has a cap; going over it fails that request or answer, which
 * is counted as an error and makes the run invalid.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define NS		1000000000LL
#define MS		1000000LL
#define MAX_CLIENTS	4096
#define MAX_FAKE_CONNS	4096
#define MAX_PHASES	16
#define HEAD_MAX	(16 << 10)	  /* a request head the fake reads */
#define REQUEST_MAX	((size_t)4 << 20) /* a model call, head and body */
#define RBUF		65536		  /* the client's read buffer: a response head must fit */
#define EVENT_MAX	((size_t)1 << 20) /* one SSE event, or a whole answer */
#define ANSWERS_PER_S	20000		  /* the answer table: 30x what bookd answers here */
#define ANSWERS_MAX	((size_t)4 << 20)
#define GRACE_NS	(60 * NS) /* answers still awaited after the deadline */
#define RETRY_NS	(10 * MS) /* before reconnecting after a socket error */
#define KINDS		16
#define TARGET_ADDED_MS 5.0
#define TARGET_FIRST_MS 2.0

static const char ANSWER[] = /* needs no JSON escaping */
	"The zero moment point is the point on the ground where the net moment of gravity and inertia has "
	"no horizontal component [1]. A walking robot keeps it inside its support polygon [2].";
static const char QUESTION[] = "What is the zero moment point and why does it matter for walking robots?";
static const char USAGE[] = "\"usage\":{\"prompt_tokens\":900,\"completion_tokens\":40,\"total_tokens\":940}";
static const char FAKE_MARK[] = "\"provider\":\"fake\"";

/* ---- small things ------------------------------------------------------------------ */

static int64_t ts_ns(struct timespec t)
{
	return (int64_t)t.tv_sec * NS + t.tv_nsec;
}

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return ts_ns(t);
}

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench: chat_load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* A growable buffer that refuses to grow past max. */
struct buf {
	char *p;
	size_t n, cap, max;
	int failed; /* bprintf() ran out of room */
};

static int buf_add(struct buf *b, const void *p, size_t n)
{
	if (n > b->max - b->n)
		return -1;
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->n + n)
			cap *= 2;
		char *q = realloc(b->p, cap < b->max ? cap : b->max);
		if (!q)
			return -1;
		b->p = q;
		b->cap = cap < b->max ? cap : b->max;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
	return 0;
}

static void buf_drop(struct buf *b, size_t n)
{
	memmove(b->p, b->p + n, b->n - n);
	b->n -= n;
}

static void buf_free(struct buf *b)
{
	free(b->p);
	*b = (struct buf){ .max = b->max };
}

static void bprintf(struct buf *b, const char *fmt, ...)
{
	char tmp[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp) || buf_add(b, tmp, (size_t)n))
		b->failed = 1;
}

/* s as a JSON string; bytes past ASCII become '?' (a cut snippet may end mid-character). */
static void bjson_str(struct buf *b, const char *s)
{
	bprintf(b, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			bprintf(b, "\\%c", ch);
		else if (ch < 0x20)
			bprintf(b, "\\u%04x", ch);
		else
			bprintf(b, "%c", ch < 0x80 ? ch : '?');
	}
	bprintf(b, "\"");
}

/* The value of a header line "Name: value" (trimmed), or NULL if the name differs. */
static const char *header_value(const char *line, size_t n, const char *name, size_t *vn)
{
	size_t k = strlen(name);
	if (n <= k || strncasecmp(line, name, k) || line[k] != ':')
		return NULL;
	const char *v = line + k + 1, *e = line + n;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	*vn = (size_t)(e - v);
	return v;
}

static int digit(char ch, int base)
{
	int lc = ch | 0x20;
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	return base == 16 && lc >= 'a' && lc <= 'f' ? lc - 'a' + 10 : -1;
}

/* n digits, all of them, at most max: whitespace, signs and overflow are errors. */
static int parse_u64(const char *p, size_t n, int base, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	if (!n || n > 15)
		return -1;
	for (size_t i = 0; i < n; i++) {
		int d = digit(p[i], base);
		if (d < 0)
			return -1;
		v = v * (uint64_t)base + (uint64_t)d;
	}
	if (v > max)
		return -1;
	*out = v;
	return 0;
}

/* recv() that also says when the kernel got the newest of the bytes (monotonic). */
static ssize_t recv_stamped(int fd, char *p, size_t n, int64_t *mono, int64_t *kern)
{
	union {
		char b[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { p, n };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl) };
	ssize_t r = recvmsg(fd, &m, 0);
	if (r <= 0)
		return r;
	struct timespec rt;
	*mono = now_ns();
	clock_gettime(CLOCK_REALTIME, &rt);
	*kern = *mono;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		struct timespec k;
		memcpy(&k, CMSG_DATA(c), sizeof(k));
		int64_t age = ts_ns(rt) - ts_ns(k);
		if (age > 0)
			*kern = *mono - age;
	}
	return r;
}

static void sock_tune(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
}

static void ep_set(int ep, int op, int fd, uint32_t events, void *ptr)
{
	struct epoll_event e = { .events = events, .data.ptr = ptr };
	if (epoll_ctl(ep, op, fd, &e) && op != EPOLL_CTL_DEL)
		die("epoll_ctl: %s", strerror(errno));
}

static void efd_post(int fd)
{
	uint64_t one = 1;
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void efd_wait(int fd)
{
	uint64_t v;
	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

/* On a blocking socket: only the script's control connections, outside any phase. */
static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---- what the two threads share -------------------------------------------------------- */

/* One answer's stamps: the client's half, then the fake's. */
struct answer {
	int64_t t0, end, end_k, first, first_k;
	int64_t req, f_first, f_last;
	unsigned char ok;   /* client: a valid answer */
	unsigned char fake; /* fake: 1 = answered, 2 = its write failed */
};

struct kind {
	char text[128];
	long n;
};

struct phase {
	char key[32];
	unsigned id;
	int stream, clients, chunks, port;
	int alias; /* ask POST /api/chat {"message"} (a book site's widget) instead */
	int64_t warmup, duration, delay, stagger;
	int ctl; /* the /run connection, answered when the phase is over */
	struct answer *ans;
	size_t cap, issued;
	long model_calls, unmatched; /* the fake's, while the phase runs */
	long errors;		     /* the client's */
	double cpu_s;		     /* this process's CPU time (both threads) during the phase */
	struct kind kinds[KINDS];
	atomic_int over; /* the fake has seen the phase end (release) */
};

struct summary {
	long n;
	double p50, p90, p99, max, mean;
};

struct result { /* a finished phase, for /report */
	char key[32];
	int clients;
	long errors;
	double rps;
	struct summary added, added_k, first, first_k;
	char *json;
};

static struct {
	pthread_mutex_t lock;
	struct phase *pending; /* from the fake's /run to the client */
	int start_fd;	       /* eventfd: a phase is pending */
	int over_fd;	       /* eventfd: the client is done (to the fake's loop) */
	int seen_fd;	       /* eventfd: the fake has taken note */
	struct result results[MAX_PHASES];
	int nresults;
	char key[256];
} shared = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* ---- statistics ------------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static double ms3(double ns) /* ns -> ms, rounded to the us the JSON shows */
{
	return round(ns / 1e3) / 1e3;
}

/* Percentiles as the earlier Python client took them (its round() was half-to-even too). */
static struct summary summarize(int64_t *v, long n)
{
	struct summary s = { .n = n };
	if (!n)
		return s;
	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	double sum = 0;
	for (long i = 0; i < n; i++)
		sum += (double)v[i];
	const double p[3] = { 50, 90, 99 };
	double *out[3] = { &s.p50, &s.p90, &s.p99 };
	for (int k = 0; k < 3; k++) {
		long i = (long)nearbyint(p[k] / 100.0 * (double)n + 0.5) - 1;
		i = i < 0 ? 0 : i >= n ? n - 1 : i;
		*out[k] = ms3((double)v[i]);
	}
	s.max = ms3((double)v[n - 1]);
	s.mean = ms3(sum / (double)n);
	return s;
}

static void bsummary(struct buf *b, const char *name, const struct summary *s, int last)
{
	if (s->n)
		bprintf(b, "  \"%s\": {\"n\": %ld, \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f, \"mean\": %.3f}%s\n",
			name, s->n, s->p50, s->p90, s->p99, s->max, s->mean, last ? "" : ",");
	else
		bprintf(b, "  \"%s\": {\"n\": 0, \"p50\": null, \"p90\": null, \"p99\": null, \"max\": null, \"mean\": null}%s\n",
			name, last ? "" : ",");
}

/* ========================================================================================
 * The fake model
 * ======================================================================================== */

enum src_kind { S_LISTEN, S_TIMER, S_OVER, S_CONN };

struct src { /* first member of everything in the fake's epoll */
	enum src_kind kind;
};

struct fconn {
	struct src src;
	int fd;
	struct buf in;
	int64_t rx_k;	/* kernel time of the newest bytes read */
	int continued;	/* sent "100 Continue" for the request in progress */
	int busy;	/* answering: further requests wait */
	int close_after;
	int parsing;	/* in fake_parse(): it goes on with the next request itself */
	int stream, chunks, next; /* the answer being written */
	int64_t delay, due, t_req;
	int heap_at;	 /* in the timer heap, or -1 */
	unsigned phase;	 /* the answer slot: phase id (0 = none) and index */
	size_t slot;
	struct fconn *dead; /* freed once the batch of events is handled */
};

static struct {
	int ep, lfd, tfd;
	struct src listen_src, timer_src, over_src;
	struct phase *cur; /* the phase running; this thread's own pointer */
	unsigned phases;
	int chunks;
	int64_t delay, armed;
	struct fconn *heap[MAX_FAKE_CONNS];
	int nheap, nconns;
	struct fconn *dead;
	char tail[512], whole[1024]; /* a streamed answer's end; the whole answer */
	size_t tail_n, whole_n;
} fk;

static struct answer *fake_slot(struct fconn *c)
{
	return fk.cur && c->phase == fk.cur->id ? &fk.cur->ans[c->slot] : NULL;
}

/* ---- the timer heap (paced answers), on one timerfd ---- */

static void heap_swap(int i, int j)
{
	struct fconn *t = fk.heap[i];
	fk.heap[i] = fk.heap[j];
	fk.heap[j] = t;
	fk.heap[i]->heap_at = i;
	fk.heap[j]->heap_at = j;
}

static void heap_fix(int i)
{
	while (i > 0 && fk.heap[(i - 1) / 2]->due > fk.heap[i]->due) {
		heap_swap(i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
	for (;;) {
		int l = 2 * i + 1, m = i;
		if (l < fk.nheap && fk.heap[l]->due < fk.heap[m]->due)
			m = l;
		if (l + 1 < fk.nheap && fk.heap[l + 1]->due < fk.heap[m]->due)
			m = l + 1;
		if (m == i)
			return;
		heap_swap(i, m);
		i = m;
	}
}

static void heap_push(struct fconn *c, int64_t due)
{
	c->due = due;
	c->heap_at = fk.nheap++;
	fk.heap[c->heap_at] = c; /* fits: one entry per connection at most */
	heap_fix(c->heap_at);
}

static void heap_remove(struct fconn *c)
{
	int i = c->heap_at;
	if (i < 0)
		return;
	c->heap_at = -1;
	if (i != --fk.nheap) {
		fk.heap[i] = fk.heap[fk.nheap];
		fk.heap[i]->heap_at = i;
		heap_fix(i);
	}
}

static void timer_arm(void)
{
	int64_t due = fk.nheap ? fk.heap[0]->due : 0;
	if (due == fk.armed)
		return;
	struct itimerspec it = { .it_value = { .tv_sec = due / NS, .tv_nsec = due % NS } };
	if (timerfd_settime(fk.tfd, TFD_TIMER_ABSTIME, &it, NULL))
		die("timerfd_settime: %s", strerror(errno));
	fk.armed = due;
}

/* ---- connections ---- */

/*
 * Done with a connection (its fd closed or handed over). The struct lives on
 * until the batch of events is handled: a later event of the batch, or the
 * caller, may still point to it.
 */
static void fake_forget(struct fconn *c)
{
	heap_remove(c);
	c->fd = -1;
	c->dead = fk.dead;
	fk.dead = c;
	fk.nconns--;
}

static void fake_close(struct fconn *c)
{
	if (c->fd < 0)
		return;
	struct answer *a = c->busy ? fake_slot(c) : NULL;
	if (a)
		a->fake = 2;
	close(c->fd);
	fake_forget(c);
}

static void fake_reap(void)
{
	while (fk.dead) {
		struct fconn *c = fk.dead;
		fk.dead = c->dead;
		buf_free(&c->in);
		free(c);
	}
}

/*
 * An answer is a few KB for a loopback socket that buffers hundreds: if the
 * kernel does not take it all at once, bookd has stopped reading and the call
 * has failed. So nothing is queued, and nothing waits.
 */
static int fake_send(struct fconn *c, const char *p, size_t n)
{
	if (c->fd >= 0 && send(c->fd, p, n, MSG_NOSIGNAL) == (ssize_t)n)
		return 0;
	fake_close(c);
	return -1;
}

/* The script's answers (and refusals): a few bytes, written whole; then the connection is closed. */
static void fake_respond(struct fconn *c, int status, const char *ctype, const char *body, size_t n)
{
	char head[256];
	int h = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, ctype, n);
	c->close_after = 1;
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) & ~O_NONBLOCK);
	send_all(c->fd, head, (size_t)h);
	send_all(c->fd, body, n);
	fake_close(c);
}

static void fake_error(struct fconn *c, int status, const char *msg)
{
	char body[256];
	int n = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"%s\"}}", msg);
	fake_respond(c, status, "application/json", body, (size_t)n);
}

static void fake_parse(struct fconn *c);

/* The answer is written: the kernel has all of it. */
static void fake_end(struct fconn *c)
{
	struct answer *a = fake_slot(c);
	if (a) {
		a->f_last = now_ns();
		a->fake = 1;
	}
	c->busy = 0;
	c->phase = 0;
	if (c->close_after)
		fake_close(c);
	else if (!c->parsing)
		fake_parse(c); /* a request that came in meanwhile */
}

/* ---- the model's answer ---- */

/* Delta i of n, split as the earlier Python fake did: the first len % n pieces one longer. */
static size_t delta_frame(char *out, size_t max, int i, int n)
{
	size_t len = sizeof(ANSWER) - 1, size = len / (size_t)n, rem = len % (size_t)n;
	size_t at = (size_t)i * size + ((size_t)i < rem ? (size_t)i : rem);
	int k = (int)(size + ((size_t)i < rem));
	char ev[512];
	int e = snprintf(ev, sizeof(ev),
			 "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"choices\":"
			 "[{\"index\":0,\"delta\":{\"content\":\"%.*s\"}}]}\n\n",
			 k, ANSWER + at);
	return (size_t)snprintf(out, max, "%x\r\n%s\r\n", (unsigned)e, ev);
}

static void fake_answers_init(void)
{
	char ev[512];
	int e = snprintf(ev, sizeof(ev),
			 "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"choices\":[],%s}\n\n"
			 "data: [DONE]\n\n",
			 USAGE);
	fk.tail_n = (size_t)snprintf(fk.tail, sizeof(fk.tail), "%x\r\n%s\r\n0\r\n\r\n", (unsigned)e, ev);
	char body[768];
	int b = snprintf(body, sizeof(body),
			 "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":"
			 "[{\"index\":0,\"finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\",\"content\":"
			 "\"%s\"}}],%s}",
			 ANSWER, USAGE);
	fk.whole_n = (size_t)snprintf(fk.whole, sizeof(fk.whole),
				      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				      b, body);
}

static void stamp_first(struct fconn *c)
{
	struct answer *a = fake_slot(c);
	if (a)
		a->f_first = now_ns();
}

/* Writes the next piece of the answer; 1 if the one after is due at once. */
static int fake_step(struct fconn *c)
{
	if (!c->stream) {
		stamp_first(c);
		if (!fake_send(c, fk.whole, fk.whole_n))
			fake_end(c);
		return 0;
	}
	char frame[640];
	size_t n = delta_frame(frame, sizeof(frame), c->next, c->chunks);
	if (c->next == 0)
		stamp_first(c);
	if (fake_send(c, frame, n))
		return 0;
	if (++c->next < c->chunks) {
		if (!c->delay)
			return 1;
		heap_push(c, c->t_req + (int64_t)(c->next + 1) * c->delay);
		return 0;
	}
	if (!fake_send(c, fk.tail, fk.tail_n))
		fake_end(c);
	return 0;
}

/* Which answer of which phase: `bench-id:PxN`, the last one in the prompt. */
static void fake_match(struct fconn *c, const char *body, size_t n)
{
	const char *p = NULL, *q = body, *e = body + n;
	while ((q = memmem(q, (size_t)(e - q), "bench-id:", 9)))
		p = q += 9;
	c->phase = 0;
	if (!fk.cur)
		return;
	uint64_t ph = 0, slot = 0;
	const char *x = p ? memchr(p, 'x', (size_t)(e - p) < 24 ? (size_t)(e - p) : 24) : NULL;
	const char *d = x ? x + 1 : NULL;
	while (d && d < e && *d >= '0' && *d <= '9')
		d++;
	if (!x || parse_u64(p, (size_t)(x - p), 10, UINT32_MAX, &ph) || ph != fk.cur->id ||
	    parse_u64(x + 1, (size_t)(d - x - 1), 10, fk.cur->cap - 1, &slot)) {
		fk.cur->unmatched++;
		return;
	}
	c->phase = (unsigned)ph;
	c->slot = (size_t)slot;
	fk.cur->model_calls++;
}

static void fake_model(struct fconn *c, const char *body, size_t n)
{
	static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	fake_match(c, body, n);
	struct answer *a = fake_slot(c);
	if (a) {
		a->req = c->rx_k;
		a->fake = 0; /* a retry of the same question starts afresh */
	}
	c->busy = 1;
	c->stream = memmem(body, n, "\"stream\":true", 13) || memmem(body, n, "\"stream\": true", 14);
	c->chunks = fk.chunks;
	c->delay = fk.delay;
	c->next = 0;
	c->t_req = now_ns();
	if (!c->stream) {
		if (c->delay) /* the whole answer after as long as its deltas would take */
			heap_push(c, c->t_req + c->delay * c->chunks);
		else
			fake_step(c);
		return;
	}
	if (fake_send(c, head, sizeof(head) - 1))
		return;
	if (c->delay)
		heap_push(c, c->t_req + c->delay);
	else
		while (fake_step(c))
			;
}

/* ---- the script's requests ---- */

/* name=value from a query string, into out (NUL-terminated); -1 if absent or too long. */
static int query_get(const char *q, const char *name, char *out, size_t max)
{
	size_t k = strlen(name);
	for (const char *p = q; p && *p; p = strchr(p, '&'), p = p ? p + 1 : NULL) {
		if (strncmp(p, name, k) || p[k] != '=')
			continue;
		size_t n = strcspn(p + k + 1, "&");
		if (n >= max)
			return -1;
		memcpy(out, p + k + 1, n);
		out[n] = 0;
		return 0;
	}
	return -1;
}

static int query_num(const char *q, const char *name, uint64_t max, uint64_t *v)
{
	char s[24];
	return query_get(q, name, s, sizeof(s)) ? -1 : parse_u64(s, strlen(s), 10, max, v);
}

static const char *phase_parse(struct phase *ph, const char *q)
{
	char mode[8];
	uint64_t chunks, delay, clients, warmup, duration, port, stagger;
	if (query_get(q, "key", ph->key, sizeof(ph->key)) || !ph->key[0] ||
	    strspn(ph->key, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(ph->key))
		return "key: 1 to 31 of [a-z0-9_]";
	if (query_get(q, "mode", mode, sizeof(mode)) || (strcmp(mode, "stream") && strcmp(mode, "whole")))
		return "mode: stream or whole";
	if (query_num(q, "chunks", 100, &chunks) || !chunks)
		return "chunks: 1 to 100";
	if (query_num(q, "delay_ms", 10000, &delay))
		return "delay_ms: 0 to 10000";
	if (query_num(q, "clients", MAX_CLIENTS, &clients) || !clients)
		return "clients: 1 to 4096";
	if (query_num(q, "warmup", 3600, &warmup) || query_num(q, "duration", 86400, &duration) || !duration)
		return "warmup: 0 to 3600 s; duration: 1 to 86400 s";
	if (query_num(q, "bookd", 65535, &port) || !port)
		return "bookd: bookd's port";
	char st[24];
	if (query_get(q, "stagger_ms", st, sizeof(st)))
		stagger = 0;
	else if (parse_u64(st, strlen(st), 10, warmup * 1000, &stagger))
		return "stagger_ms: 0 to the warm-up";
	char route[8];
	if (query_get(q, "route", route, sizeof(route)))
		snprintf(route, sizeof(route), "query");
	if (strcmp(route, "query") && strcmp(route, "alias"))
		return "route: query or alias";
	ph->alias = !strcmp(route, "alias");
	if (ph->alias && !strcmp(mode, "stream"))
		return "route=alias answers whole only";
	ph->stream = !strcmp(mode, "stream");
	ph->chunks = (int)chunks;
	ph->delay = (int64_t)delay * MS;
	ph->clients = (int)clients;
	ph->warmup = (int64_t)warmup * NS;
	ph->duration = (int64_t)duration * NS;
	ph->port = (int)port;
	ph->stagger = (int64_t)stagger * MS;
	return NULL;
}

/* GET /run?...: sets the model up and hands the phase, with this connection, to the client. */
static void ctl_run(struct fconn *c, const char *q)
{
	static const char busy[] = "a phase is running";
	struct phase *ph = calloc(1, sizeof(*ph));
	const char *bad = ph ? phase_parse(ph, q) : "out of memory";
	if (!bad && fk.cur)
		bad = busy;
	if (!bad) {
		size_t cap = (size_t)((ph->warmup + ph->duration) / NS + 1) * ANSWERS_PER_S + (size_t)ph->clients;
		ph->cap = cap < ANSWERS_MAX ? cap : ANSWERS_MAX;
		ph->ans = calloc(ph->cap, sizeof(*ph->ans)); /* pages are touched only as used */
		bad = ph->ans ? NULL : "out of memory";
	}
	if (bad) {
		if (ph)
			free(ph->ans);
		free(ph);
		fake_error(c, bad == busy ? 409 : 400, bad);
		return;
	}
	ph->id = ++fk.phases;
	fk.chunks = ph->chunks;
	fk.delay = ph->delay;
	fk.cur = ph;
	ep_set(fk.ep, EPOLL_CTL_DEL, c->fd, 0, NULL);
	ph->ctl = c->fd; /* the client thread's now */
	fake_forget(c);
	pthread_mutex_lock(&shared.lock);
	shared.pending = ph;
	pthread_mutex_unlock(&shared.lock);
	efd_post(shared.start_fd);
}

/* The client is done: no stamp goes into the phase's table after this. */
static void fake_phase_over(void)
{
	efd_wait(shared.over_fd);
	struct phase *ph = fk.cur;
	fk.cur = NULL;
	if (ph)
		atomic_store_explicit(&ph->over, 1, memory_order_release);
	efd_post(shared.seen_fd);
}

static const char *const PHASE_LABELS[][2] = {
	{ "stream", "streamed, instant fake" },
	{ "whole", "not streamed, instant fake" },
	{ "whole_alias", "POST /api/chat, instant fake" },
	{ "stream_paced", "streamed, paced fake" },
	{ "whole_paced", "not streamed, paced fake" },
};

static const char *num(char *s, size_t n, double v, long have, int w)
{
	if (have)
		snprintf(s, n, "%*.2f", w, v);
	else
		snprintf(s, n, "%*s", w, "-");
	return s;
}

static void report_table(void)
{
	char a[5][32], title[40];
	snprintf(title, sizeof(title), "%d concurrent chats", shared.nresults ? shared.results[0].clients : 0);
	printf("%-28s %10s %10s %10s %12s %12s %7s\n", title, "answers/s", "added p50", "added p99", "1st tok p50",
	       "1st tok p99", "errors");
	for (size_t k = 0; k < sizeof(PHASE_LABELS) / sizeof(PHASE_LABELS[0]); k++) {
		for (int i = 0; i < shared.nresults; i++) {
			const struct result *r = &shared.results[i];
			if (strcmp(r->key, PHASE_LABELS[k][0]))
				continue;
			printf("%-28s %s %s %s %s %s %7ld\n", PHASE_LABELS[k][1], num(a[0], 32, r->rps, 1, 10),
			       num(a[1], 32, r->added.p50, r->added.n, 10), num(a[2], 32, r->added.p99, r->added.n, 10),
			       num(a[3], 32, r->first.p50, r->first.n, 12), num(a[4], 32, r->first.p99, r->first.n, 12),
			       r->errors);
		}
	}
	printf("(ms; added = total - the fake's own time; 1st tok = client got the first delta - the fake sent it)\n");
}

static void report_target(struct buf *b, const struct result *r, const char *label, int *first)
{
	int added_ok = r->added.n && r->added.p99 < TARGET_ADDED_MS;
	int first_ok = r->first.n && r->first.p99 < TARGET_FIRST_MS;
	char s[4][32];
	printf("target, %s: added p99 %s ms (< %g: %s), first token p99 %s ms (< %g: %s); kernel-stamped: %s / %s ms\n",
	       label, num(s[0], 32, r->added.p99, r->added.n, 0), TARGET_ADDED_MS, added_ok ? "met" : "NOT met",
	       num(s[1], 32, r->first.p99, r->first.n, 0), TARGET_FIRST_MS, first_ok ? "met" : "NOT met",
	       num(s[2], 32, r->added_k.p99, r->added_k.n, 0), num(s[3], 32, r->first_k.p99, r->first_k.n, 0));
	const struct summary *v[4] = { &r->added, &r->added_k, &r->first, &r->first_k };
	char j[4][32];
	for (int i = 0; i < 4; i++)
		snprintf(j[i], sizeof(j[i]), v[i]->n ? "%.3f" : "null", v[i]->p99);
	bprintf(b,
		"%s\n      \"%s\": {\"added_p99_ms\": %s, \"added_p99_ok\": %s, \"added_kernel_p99_ms\": %s, "
		"\"first_token_p99_ms\": %s, \"first_token_p99_ok\": %s, \"first_token_kernel_p99_ms\": %s}",
		*first ? "" : ",", r->key, j[0], added_ok ? "true" : "false", j[1], j[2], first_ok ? "true" : "false",
		j[3]);
	*first = 0;
}

/*
 * GET /report: prints the phases side by side and the targets, and
 * answers {"phases": {KEY: <the phase's JSON>, ...}, "target": {...}} with
 * "{" alone on the first line and "}" alone on the last, so that bench/chat.sh
 * can splice the members into bench/out/chat.json.
 */
static void ctl_report(struct fconn *c)
{
	struct buf b = { .max = (size_t)16 << 20 };
	pthread_mutex_lock(&shared.lock);
	report_table();
	bprintf(&b, "{\n  \"phases\": {");
	for (int i = 0; i < shared.nresults; i++) {
		bprintf(&b, "%s\n    \"%s\": ", i ? "," : "", shared.results[i].key);
		if (buf_add(&b, shared.results[i].json, strlen(shared.results[i].json)))
			b.failed = 1;
	}
	bprintf(&b, "\n  },\n  \"target\": {\"added_p99_ms_max\": %.1f, \"first_token_p99_ms_max\": %.1f, \"phases\": {",
		TARGET_ADDED_MS, TARGET_FIRST_MS);
	int first = 1;
	for (size_t k = 0; k < 4; k += 2) /* stream, stream_paced */
		for (int i = 0; i < shared.nresults; i++)
			if (!strcmp(shared.results[i].key, PHASE_LABELS[k][0]))
				report_target(&b, &shared.results[i], PHASE_LABELS[k][1], &first);
	bprintf(&b, "\n    }\n  }\n}\n");
	pthread_mutex_unlock(&shared.lock);
	fflush(stdout);
	if (b.failed)
		fake_error(c, 500, "the report is too large");
	else
		fake_respond(c, 200, "application/json", b.p, b.n);
	buf_free(&b);
}

/* ---- requests ---- */

struct request {
	char target[512];
	int get, post, close, expect;
	uint64_t length;
};

static int request_head(const char *p, size_t n, struct request *r)
{
	const char *eol = memmem(p, n, "\r\n", 2), *sp1 = memchr(p, ' ', (size_t)(eol - p));
	const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
	if (!sp2 || (size_t)(sp2 - sp1 - 1) >= sizeof(r->target))
		return -1;
	*r = (struct request){ .get = sp1 - p == 3 && !memcmp(p, "GET", 3),
			       .post = sp1 - p == 4 && !memcmp(p, "POST", 4) };
	memcpy(r->target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
	r->close = eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.1", 8);
	for (const char *l = eol + 2; l < p + n; l = eol + 2) {
		eol = memmem(l, (size_t)(p + n - l), "\r\n", 2);
		size_t vn, ln = (size_t)(eol - l);
		const char *v;
		if ((v = header_value(l, ln, "Content-Length", &vn)) && parse_u64(v, vn, 10, UINT64_MAX >> 1, &r->length))
			return -1;
		if ((v = header_value(l, ln, "Transfer-Encoding", &vn)))
			return -1; /* libcurl sends POSTFIELDS with a Content-Length */
		if ((v = header_value(l, ln, "Expect", &vn)) && memmem(v, vn, "100-continue", 12))
			r->expect = 1;
		if ((v = header_value(l, ln, "Connection", &vn)) && memmem(v, vn, "close", 5))
			r->close = 1;
	}
	return 0;
}

static void fake_request(struct fconn *c, struct request *r, const char *body)
{
	char *q = strchr(r->target, '?');
	if (q)
		*q++ = 0;
	c->close_after = r->close;
	if (r->post && !strcmp(r->target, "/v1/chat/completions"))
		fake_model(c, body, r->length);
	else if (r->get && !strcmp(r->target, "/health"))
		fake_respond(c, 200, "text/plain", "ok\n", 3);
	else if (r->get && !strcmp(r->target, "/run") && q)
		ctl_run(c, q);
	else if (r->get && !strcmp(r->target, "/report"))
		ctl_report(c);
	else
		fake_error(c, 404, "unknown path");
}

/* Handles every complete request in the buffer, one at a time. */
static void fake_parse(struct fconn *c)
{
	c->parsing = 1;
	while (c->fd >= 0 && !c->busy && !c->close_after) {
		char *end = c->in.n ? memmem(c->in.p, c->in.n, "\r\n\r\n", 4) : NULL;
		if (!end) {
			if (c->in.n > HEAD_MAX)
				fake_error(c, 431, "request head too large");
			break;
		}
		size_t head = (size_t)(end - c->in.p) + 4;
		struct request r;
		if (head > HEAD_MAX || request_head(c->in.p, head - 2, &r)) {
			fake_error(c, 400, "bad request");
			break;
		}
		if (r.length > REQUEST_MAX - head) {
			fake_error(c, 413, "request too large");
			break;
		}
		if (c->in.n - head < r.length) {
			if (r.expect && !c->continued && !fake_send(c, "HTTP/1.1 100 Continue\r\n\r\n", 25))
				c->continued = 1;
			break;
		}
		c->continued = 0;
		fake_request(c, &r, c->in.p + head);
		if (c->fd >= 0)
			buf_drop(&c->in, head + r.length);
	}
	c->parsing = 0;
}

static void fake_readable(struct fconn *c)
{
	char tmp[65536];
	int64_t mono;
	ssize_t r = recv_stamped(c->fd, tmp, sizeof(tmp), &mono, &c->rx_k);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (r <= 0) {
		fake_close(c);
		return;
	}
	if (buf_add(&c->in, tmp, (size_t)r)) {
		fake_error(c, 413, "request too large");
		return;
	}
	fake_parse(c);
}

static void fake_accept(void)
{
	for (;;) {
		int fd = accept4(fk.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct fconn *c = fk.nconns < MAX_FAKE_CONNS ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			close(fd);
			continue;
		}
		c->src.kind = S_CONN;
		c->fd = fd;
		c->heap_at = -1;
		c->in.max = REQUEST_MAX;
		fk.nconns++;
		sock_tune(fd);
		ep_set(fk.ep, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP, c);
	}
}

static void fake_timers(void)
{
	uint64_t v;
	if (read(fk.tfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		die("timerfd: %s", strerror(errno));
	fk.armed = -1;
	int64_t now = now_ns();
	while (fk.nheap && fk.heap[0]->due <= now) {
		struct fconn *c = fk.heap[0];
		heap_remove(c);
		fake_step(c);
	}
}


static void fake_listen(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fk.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fk.lfd < 0 || setsockopt(fk.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fk.lfd, (struct sockaddr *)&a, sizeof(a)) || listen(fk.lfd, 1024))
		die("cannot listen on 127.0.0.1:%d: %s", port, strerror(errno));
}

static void fake_loop(void)
{
	struct epoll_event evs[64];
	fk.listen_src.kind = S_LISTEN;
	fk.timer_src.kind = S_TIMER;
	fk.over_src.kind = S_OVER;
	ep_set(fk.ep, EPOLL_CTL_ADD, fk.lfd, EPOLLIN, &fk.listen_src);
	ep_set(fk.ep, EPOLL_CTL_ADD, fk.tfd, EPOLLIN, &fk.timer_src);
	ep_set(fk.ep, EPOLL_CTL_ADD, shared.over_fd, EPOLLIN, &fk.over_src);
	for (;;) {
		int n = epoll_wait(fk.ep, evs, 64, -1);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			struct src *s = evs[i].data.ptr;
			switch (s->kind) {
			case S_LISTEN: fake_accept(); break;
			case S_TIMER: fake_timers(); break;
			case S_OVER: fake_phase_over(); break;
			case S_CONN:
				if (((struct fconn *)s)->fd >= 0) /* else closed earlier in this batch */
					fake_readable((struct fconn *)s);
				break;
			}
		}
		fake_reap();
		timer_arm();
	}
}

/* ========================================================================================
 * The client
 * ======================================================================================== */

enum cstate { C_OFF, C_WAIT, C_CONNECTING, C_HEAD, C_LENGTH, C_CHUNK, C_DATA, C_DATA_END, C_TRAILER };

struct cconn {
	int fd;
	enum cstate st;
	struct answer *a;
	char rb[RBUF];
	size_t rn, rpos;
	int64_t rd, rd_k; /* the newest read: monotonic, kernel */
	int64_t t0, first, first_k, retry_at;
	int status, chunked, close_after, sse, toobig, done, done_fake, erred, have_first;
	uint64_t left; /* of the Content-Length body, or of the chunk */
	struct buf ev; /* the SSE event being read, or the body */
	size_t scan;
	char err[128]; /* the start of an `error` event's data */
};

static struct {
	int ep;
	struct phase *ph;
	struct cconn *c;
	int live, waiting; /* connections not done; of them, pausing after an error */
	int64_t warm_end, deadline;
} cl;

/* Errors by kind; the last slot takes whatever does not fit. */
static void kind_add(struct phase *ph, const char *text, long n)
{
	struct kind *k = ph->kinds;
	int i = 0;
	while (i < KINDS - 1 && k[i].n && strcmp(k[i].text, text))
		i++;
	if (!k[i].n)
		snprintf(k[i].text, sizeof(k[i].text), "%s", i == KINDS - 1 ? "other errors" : text);
	k[i].n += n;
	ph->errors += n;
}

static void count_error(const char *text)
{
	kind_add(cl.ph, text, 1);
}

static void cc_close(struct cconn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
	c->rn = c->rpos = 0;
}

static void cc_off(struct cconn *c)
{
	cc_close(c);
	c->st = C_OFF;
	cl.live--;
}

/* A socket or protocol error: counted; the connection is closed and, until the deadline, made again. */
static int cc_fail(struct cconn *c, const char *why)
{
	count_error(why);
	cc_close(c);
	int64_t now = now_ns();
	if (now >= cl.deadline) {
		cc_off(c);
	} else {
		c->st = C_WAIT;
		c->retry_at = now + RETRY_NS;
		cl.waiting++;
	}
	return -1;
}

static void cc_sent(struct cconn *c)
{
	c->st = C_HEAD;
	c->status = c->chunked = c->close_after = c->sse = c->toobig = 0;
	c->done = c->done_fake = c->erred = c->have_first = 0;
	c->ev.n = c->scan = 0;
}

/* The next question on a connected socket. */
static void cc_ask(struct cconn *c)
{
	struct phase *ph = cl.ph;
	if (ph->issued >= ph->cap) {
		count_error("the answer table is full (a shorter BENCH_DURATION?)");
		cc_off(c);
		return;
	}
	size_t id = ph->issued++;
	c->a = &ph->ans[id];
	char body[256], req[1024];
	int b = snprintf(body, sizeof(body), "{\"%s\": \"%s bench-id:%ux%zu\"}", ph->alias ? "message" : "question",
			 QUESTION, ph->id, id);
	int n = snprintf(req, sizeof(req),
			 "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-API-Key: %s\r\n"
			 "Content-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s",
			 ph->alias ? "/api/chat" : "/api/v1/chatbot/query", ph->port, shared.key,
			 ph->stream ? "Accept: text/event-stream\r\n" : "", b, body);
	c->t0 = now_ns();
	/* Under 1 KB to an idle socket: a short write means bookd is not reading (as in fake_send()). */
	ssize_t w = send(c->fd, req, (size_t)n, MSG_NOSIGNAL);
	if (w != n) {
		cc_fail(c, w < 0 ? strerror(errno) : "bookd does not read its requests");
		return;
	}
	cc_sent(c);
}

static void cc_connect(struct cconn *c)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)cl.ph->port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		cc_fail(c, strerror(errno));
		return;
	}
	sock_tune(c->fd);
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS) {
		cc_fail(c, strerror(errno));
		return;
	}
	c->st = C_CONNECTING;
	ep_set(cl.ep, EPOLL_CTL_ADD, c->fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, c);
}

static void cc_connected(struct cconn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
		cc_fail(c, strerror(err ? err : errno));
		return;
	}
	ep_set(cl.ep, EPOLL_CTL_MOD, c->fd, EPOLLIN | EPOLLRDHUP, c);
	cc_ask(c);
}

/* Closed loop: the next question at once, until the deadline. */
static void cc_next(struct cconn *c)
{
	if (now_ns() >= cl.deadline)
		cc_off(c);
	else if (c->fd < 0)
		cc_connect(c);
	else
		cc_ask(c);
}

/* ---- the response ---- */

static void sse_event(struct cconn *c, const char *p, size_t n)
{
	const char *name = "message", *data = "";
	size_t nn = 7, dn = 0;
	for (const char *l = p, *e; l < p + n; l = e + 1) {
		e = memchr(l, '\n', (size_t)(p + n - l));
		e = e ? e : p + n;
		size_t k = (size_t)(e - l), skip = 0;
		if (k >= 6 && !memcmp(l, "event:", 6))
			skip = 6;
		else if (k >= 5 && !memcmp(l, "data:", 5))
			skip = 5;
		if (!skip)
			continue;
		const char *v = l + skip;
		while (v < e && *v == ' ')
			v++;
		if (skip == 6)
			name = v, nn = (size_t)(e - v);
		else
			data = v, dn = (size_t)(e - v);
	}
	if (nn == 5 && !memcmp(name, "delta", 5) && !c->have_first) {
		c->have_first = 1;
		c->first = c->rd;
		c->first_k = c->rd_k;
	} else if (nn == 4 && !memcmp(name, "done", 4)) {
		c->done = 1;
		c->done_fake = memmem(data, dn, FAKE_MARK, sizeof(FAKE_MARK) - 1) != NULL;
	} else if (nn == 5 && !memcmp(name, "error", 5)) {
		c->erred = 1;
		snprintf(c->err, sizeof(c->err), "%.*s", (int)(dn < 120 ? dn : 120), data);
	}
}

/* Decoded body bytes: Server-Sent Events, or the body kept (up to its cap) to be checked. */
static int cc_body(struct cconn *c, const char *p, size_t n)
{
	if (!c->sse) {
		if (buf_add(&c->ev, p, n))
			c->toobig = 1;
		return 0;
	}
	if (buf_add(&c->ev, p, n))
		return cc_fail(c, "an SSE event over 1 MB");
	char *e;
	while ((e = memmem(c->ev.p + c->scan, c->ev.n - c->scan, "\n\n", 2))) {
		sse_event(c, c->ev.p, (size_t)(e - c->ev.p));
		buf_drop(&c->ev, (size_t)(e - c->ev.p) + 2);
		c->scan = 0;
	}
	c->scan = c->ev.n ? c->ev.n - 1 : 0;
	return 0;
}

static int cc_head(struct cconn *c, const char *p, size_t n)
{
	uint64_t status;
	if (n < 12 || memcmp(p, "HTTP/1.", 7) || parse_u64(p + 9, 3, 10, 999, &status))
		return cc_fail(c, "not an HTTP response");
	c->status = (int)status;
	c->left = 0;
	for (const char *l = memmem(p, n, "\r\n", 2) + 2, *e; l < p + n; l = e + 2) {
		e = memmem(l, (size_t)(p + n - l), "\r\n", 2);
		size_t vn;
		const char *v;
		if ((v = header_value(l, (size_t)(e - l), "Transfer-Encoding", &vn)))
			c->chunked = vn == 7 && !strncasecmp(v, "chunked", 7);
		else if ((v = header_value(l, (size_t)(e - l), "Content-Length", &vn)) &&
			 parse_u64(v, vn, 10, UINT64_MAX >> 1, &c->left))
			return cc_fail(c, "a bad Content-Length");
		else if ((v = header_value(l, (size_t)(e - l), "Connection", &vn)))
			c->close_after = vn == 5 && !strncasecmp(v, "close", 5);
	}
	c->sse = cl.ph->stream && c->status == 200;
	c->st = c->chunked ? C_CHUNK : C_LENGTH;
	return 0;
}

/* Consumes what it can of the read buffer: -1 failed, 1 the response is complete, 0 more to read. */
static int cc_parse(struct cconn *c)
{
	for (;;) {
		char *p = c->rb + c->rpos, *e;
		size_t n = c->rn - c->rpos, take = (size_t)(c->left < n ? c->left : n);
		switch (c->st) {
		case C_HEAD:
			if (!(e = memmem(p, n, "\r\n\r\n", 4)))
				return n == RBUF ? cc_fail(c, "a response head over 64 KB") : 0;
			if (cc_head(c, p, (size_t)(e - p) + 2))
				return -1;
			c->rpos += (size_t)(e - p) + 4;
			break;
		case C_LENGTH:
		case C_DATA:
			if (cc_body(c, p, take))
				return -1;
			c->rpos += take;
			c->left -= take;
			if (c->left)
				return 0;
			if (c->st == C_LENGTH)
				return 1;
			c->st = C_DATA_END;
			break;
		case C_CHUNK:
		case C_TRAILER:
			if (!(e = memmem(p, n, "\r\n", 2)))
				return n > 1024 ? cc_fail(c, "a bad chunk") : 0;
			c->rpos += (size_t)(e - p) + 2;
			if (c->st == C_TRAILER) {
				if (e == p)
					return 1;
				break;
			}
			const char *ext = memchr(p, ';', (size_t)(e - p));
			if (parse_u64(p, (size_t)((ext ? ext : e) - p), 16, EVENT_MAX, &c->left))
				return cc_fail(c, "a bad chunk size");
			c->st = c->left ? C_DATA : C_TRAILER;
			break;
		case C_DATA_END:
			if (n < 2)
				return 0;
			if (memcmp(p, "\r\n", 2))
				return cc_fail(c, "a bad chunk end");
			c->rpos += 2;
			c->st = C_CHUNK;
			break;
		default:
			return 0; /* bytes that no question asked for: left for the next response */
		}
	}
}

static const char *cc_verdict(struct cconn *c, char *msg, size_t max)
{
	if (c->sse) {
		if (c->erred)
			return snprintf(msg, max, "error event: %s", c->err), msg;
		if (!c->done)
			return "stream ended without a done event";
		if (!c->done_fake)
			return "answered without the model (extractive fallback)";
		return c->have_first ? NULL : "no delta event";
	}
	if (c->status != 200) {
		size_t n = c->ev.n < 120 ? c->ev.n : 120;
		return snprintf(msg, max, "status %d: %.*s", c->status, (int)n, c->ev.n ? c->ev.p : ""), msg;
	}
	if (c->toobig)
		return "an answer over 1 MB";
	if (!memmem(c->ev.p ? c->ev.p : "", c->ev.n, FAKE_MARK, sizeof(FAKE_MARK) - 1))
		return "answered without the model (extractive fallback)";
	return NULL;
}

static void cc_complete(struct cconn *c)
{
	char msg[200];
	const char *why = cc_verdict(c, msg, sizeof(msg));
	if (why) {
		count_error(why);
	} else { /* the client's half of the slot only: the fake's is the fake's */
		c->a->t0 = c->t0;
		c->a->end = c->rd;
		c->a->end_k = c->rd_k;
		c->a->first = c->first;
		c->a->first_k = c->first_k;
		c->a->ok = 1;
	}
	c->st = C_HEAD; /* no answer is pending while cc_next() decides */
	if (c->close_after)
		cc_close(c);
	cc_next(c);
}

static void cc_readable(struct cconn *c)
{
	for (;;) {
		size_t room = RBUF - c->rn;
		ssize_t r = room ? recv_stamped(c->fd, c->rb + c->rn, room, &c->rd, &c->rd_k) : 0;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (r <= 0) {
			cc_fail(c, r ? strerror(errno) : room ? "bookd closed the connection" : "read buffer full");
			return;
		}
		c->rn += (size_t)r;
		int rc = cc_parse(c);
		if (rc < 0)
			return;
		memmove(c->rb, c->rb + c->rpos, c->rn - c->rpos);
		c->rn -= c->rpos;
		c->rpos = 0;
		if (rc > 0) {
			cc_complete(c);
			return;
		}
		if ((size_t)r < room)
			return;
	}
}

static void cc_event(struct cconn *c, uint32_t ev)
{
	if (c->st == C_CONNECTING) {
		cc_connected(c);
		return;
	}
	if (c->st >= C_HEAD && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
		cc_readable(c);
}

/* ---- a phase ---- */

static void client_loop(int64_t hard_end)
{
	struct epoll_event evs[64];
	while (cl.live > 0) {
		int64_t now = now_ns();
		for (int i = 0; cl.waiting && i < cl.ph->clients; i++) {
			struct cconn *c = &cl.c[i];
			if (c->st == C_WAIT && c->retry_at <= now) {
				cl.waiting--;
				cc_next(c);
			}
		}
		if (now >= hard_end) {
			for (int i = 0; i < cl.ph->clients; i++)
				if (cl.c[i].st != C_OFF) {
					count_error("no answer within 60 s after the phase's end");
					cl.waiting -= cl.c[i].st == C_WAIT;
					cc_off(&cl.c[i]);
				}
			return;
		}
		int n = epoll_wait(cl.ep, evs, 64, cl.waiting ? 2 : 100);
		if (n < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++)
			cc_event(evs[i].data.ptr, evs[i].events);
	}
}

static double cpu_now(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec +
	       ((double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_usec) / 1e6;
}

static void client_run(struct phase *ph)
{
	double cpu = cpu_now();
	cl.ph = ph;
	cl.c = calloc((size_t)ph->clients, sizeof(*cl.c));
	if (!cl.c)
		die("out of memory");
	int64_t start = now_ns();
	cl.warm_end = start + ph->warmup;
	cl.deadline = cl.warm_end + ph->duration;
	cl.live = ph->clients;
	cl.waiting = ph->clients;
	for (int i = 0; i < ph->clients; i++) { /* first questions spread over the stagger */
		cl.c[i].fd = -1;
		cl.c[i].ev.max = EVENT_MAX;
		cl.c[i].st = C_WAIT;
		cl.c[i].retry_at = start + ph->stagger * i / ph->clients;
	}
	client_loop(cl.deadline + GRACE_NS);
	ph->cpu_s = cpu_now() - cpu;
	for (int i = 0; i < ph->clients; i++)
		buf_free(&cl.c[i].ev);
	free(cl.c);
	cl.c = NULL;
}

/* ---- its figures ---- */

enum { M_ADDED, M_ADDED_K, M_TOTAL, M_PROVIDER, M_BEFORE, M_AFTER, M_FIRST, M_FIRST_K, M_N };

static const char *const METRIC_KEYS[M_N] = {
	"added_latency_ms", "added_latency_kernel_ms", "total_ms", "provider_ms",
	"before_model_ms", "after_model_ms", "first_token_ms", "first_token_kernel_ms",
};

struct figures {
	struct summary s[M_N];
	long measured, in_window, no_record;
};

/* Joins the client's stamps to the fake's: answers asked after the warm-up count. */
static void figures_of(const struct phase *ph, struct figures *f)
{
	int64_t *v[M_N];
	long n = 0;
	*f = (struct figures){ 0 };
	for (int m = 0; m < M_N; m++)
		if (!(v[m] = malloc((ph->issued + 1) * sizeof(int64_t))))
			die("out of memory");
	for (size_t i = 0; i < ph->issued; i++) {
		const struct answer *a = &ph->ans[i];
		if (!a->ok)
			continue;
		f->in_window += a->end >= cl.warm_end && a->end <= cl.deadline;
		if (a->t0 < cl.warm_end)
			continue;
		if (a->fake != 1) {
			f->no_record++;
			continue;
		}
		int64_t prov = a->f_last - a->req;
		v[M_TOTAL][n] = a->end - a->t0;
		v[M_PROVIDER][n] = prov;
		v[M_ADDED][n] = a->end - a->t0 - prov;
		v[M_ADDED_K][n] = a->end_k - a->t0 - prov;
		v[M_BEFORE][n] = a->req - a->t0;
		v[M_AFTER][n] = a->end_k - a->f_last;
		v[M_FIRST][n] = a->first - a->f_first;
		v[M_FIRST_K][n] = a->first_k - a->f_first;
		n++;
	}
	f->measured = n;
	for (int m = 0; m < M_N; m++) {
		f->s[m] = summarize(v[m], m >= M_FIRST && !ph->stream ? 0 : n);
		free(v[m]);
	}
}

static void print_line(const char *label, const struct summary *s)
{
	if (s->n)
		printf("  %-22s p50 %.3f  p99 %.3f  max %.3f ms\n", label, s->p50, s->p99, s->max);
	else
		printf("  %-22s n/a\n", label);
}

static void print_phase(const struct phase *ph, const struct figures *f, double rps)
{
	printf("%s, %d clients: %ld answers measured in %g s, %.1f answers/s, errors %ld\n",
	       ph->stream ? "streamed (SSE)" : "not streamed (JSON)", ph->clients, f->measured,
	       (double)ph->duration / NS, rps, ph->errors);
	print_line("added latency", &f->s[M_ADDED]);
	print_line("  kernel-stamped end", &f->s[M_ADDED_K]);
	if (ph->stream) {
		print_line("first token", &f->s[M_FIRST]);
		print_line("  kernel-stamped", &f->s[M_FIRST_K]);
	}
	print_line("total", &f->s[M_TOTAL]);
	print_line("provider (fake)", &f->s[M_PROVIDER]);
	if (f->measured)
		printf("  before / after model   p99 %.3f / %.3f ms\n", f->s[M_BEFORE].p99, f->s[M_AFTER].p99);
	else
		printf("  before / after model   n/a\n");
	printf("  chat_load's own CPU    %.3f s (%.1f us per answer asked, fake and client)\n", ph->cpu_s,
	       ph->issued ? ph->cpu_s * 1e6 / (double)ph->issued : 0.0);
	for (int i = 0; i < KINDS && ph->kinds[i].n; i++)
		printf("  error x%ld: %s\n", ph->kinds[i].n, ph->kinds[i].text);
	fflush(stdout);
}

static char *phase_json(const struct phase *ph, const struct figures *f, double rps)
{
	struct buf b = { .max = (size_t)1 << 20 };
	bprintf(&b, "{\n  \"mode\": \"%s\",\n  \"clients\": %d,\n  \"warmup_s\": %g,\n  \"duration_s\": %g,\n",
		ph->stream ? "stream" : "whole", ph->clients, (double)ph->warmup / NS, (double)ph->duration / NS);
	bprintf(&b, "  \"chunks\": %d,\n  \"delay_ms\": %g,\n  \"stagger_ms\": %g,\n", ph->chunks,
		(double)ph->delay / MS, (double)ph->stagger / MS);
	bprintf(&b, "  \"answers_measured\": %ld,\n  \"requests_per_sec\": %.2f,\n  \"errors\": %ld,\n",
		f->measured, rps, ph->errors);
	bprintf(&b, "  \"error_kinds\": {");
	for (int i = 0; i < KINDS && ph->kinds[i].n; i++) {
		bprintf(&b, "%s", i ? ", " : "");
		bjson_str(&b, ph->kinds[i].text);
		bprintf(&b, ": %ld", ph->kinds[i].n);
	}
	bprintf(&b, "},\n  \"model_calls\": %ld,\n  \"model_calls_without_id\": %ld,\n", ph->model_calls,
		ph->unmatched);
	bprintf(&b, "  \"questions_asked\": %zu,\n  \"load_cpu_s\": %.3f,\n", ph->issued, ph->cpu_s);
	int nm = ph->stream ? M_N : M_FIRST;
	for (int m = 0; m < nm; m++)
		bsummary(&b, METRIC_KEYS[m], &f->s[m], m == nm - 1);
	bprintf(&b, "}");
	if (b.failed || buf_add(&b, "", 1))
		die("a phase's JSON does not fit in 1 MB");
	return b.p;
}

static void phase_finish(struct phase *ph)
{
	struct figures f;
	figures_of(ph, &f);
	if (f.no_record)
		kind_add(ph, "answers the fake has no record of", f.no_record);
	double rps = round((double)f.in_window / ((double)ph->duration / NS) * 100) / 100;
	print_phase(ph, &f, rps);
	char *json = phase_json(ph, &f, rps);
	int ok = !ph->errors && f.measured, kept = 0;
	pthread_mutex_lock(&shared.lock);
	if (shared.nresults < MAX_PHASES) { /* more phases than bench/chat.sh runs: left out of /report */
		kept = 1;
		struct result *r = &shared.results[shared.nresults++];
		*r = (struct result){ .clients = ph->clients, .errors = ph->errors, .rps = rps,
				      .added = f.s[M_ADDED], .added_k = f.s[M_ADDED_K], .first = f.s[M_FIRST],
				      .first_k = f.s[M_FIRST_K], .json = json };
		snprintf(r->key, sizeof(r->key), "%s", ph->key);
	}
	pthread_mutex_unlock(&shared.lock);
	char head[160];
	size_t jn = strlen(json);
	int h = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 ok ? 200 : 422, jn);
	fcntl(ph->ctl, F_SETFL, fcntl(ph->ctl, F_GETFL) & ~O_NONBLOCK);
	if (send_all(ph->ctl, head, (size_t)h) || send_all(ph->ctl, json, jn))
		fprintf(stderr, "bench: chat_load: cannot answer /run: %s\n", strerror(errno));
	close(ph->ctl);
	if (!kept)
		free(json);
}

static void *client_main(void *arg)
{
	(void)arg;
	cl.ep = epoll_create1(EPOLL_CLOEXEC);
	if (cl.ep < 0)
		die("epoll_create1: %s", strerror(errno));
	for (;;) {
		efd_wait(shared.start_fd);
		pthread_mutex_lock(&shared.lock);
		struct phase *ph = shared.pending;
		shared.pending = NULL;
		pthread_mutex_unlock(&shared.lock);
		if (!ph)
			continue;
		client_run(ph);
		efd_post(shared.over_fd); /* the handshake: after it the fake leaves the table alone */
		efd_wait(shared.seen_fd);
		if (!atomic_load_explicit(&ph->over, memory_order_acquire))
			die("the phase ended out of step");
		phase_finish(ph);
		free(ph->ans);
		free(ph);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	uint64_t port, chunks = 4;
	if (argc < 2 || argc > 3 || parse_u64(argv[1], strlen(argv[1]), 10, 65535, &port) || !port ||
	    (argc == 3 && (parse_u64(argv[2], strlen(argv[2]), 10, 100, &chunks) || !chunks))) {
		fprintf(stderr, "usage: chat_load PORT [CHUNKS]   (BENCH_API_KEY in the environment)\n");
		return 2;
	}
	const char *key = getenv("BENCH_API_KEY");
	if (!key || !*key || strlen(key) >= sizeof(shared.key) || strpbrk(key, "\r\n"))
		die("BENCH_API_KEY must be set (one line, under 256 bytes)");
	snprintf(shared.key, sizeof(shared.key), "%s", key);
	signal(SIGPIPE, SIG_IGN);
	fk.chunks = (int)chunks;
	fk.armed = -1;
	fake_answers_init();
	fake_listen((int)port);
	fk.ep = epoll_create1(EPOLL_CLOEXEC);
	fk.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	shared.start_fd = eventfd(0, EFD_CLOEXEC);
	shared.over_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	shared.seen_fd = eventfd(0, EFD_CLOEXEC);
	if (fk.ep < 0 || fk.tfd < 0 || shared.start_fd < 0 || shared.over_fd < 0 || shared.seen_fd < 0)
		die("epoll, timerfd or eventfd: %s", strerror(errno));
	pthread_t t;
	if (pthread_create(&t, NULL, client_main, NULL))
		die("cannot start the client thread");
	fake_loop();
	return 0;
}
