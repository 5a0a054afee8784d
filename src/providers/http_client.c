#include "http_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../core/uuid.h"

/* A backoff sleep looks at the call's own cancelled() this often (the stop
 * wakes it at once by itself). */
#define SLEEP_SLICE_MS 50
#define BACKOFF_MAX_MS 30000L

struct phttp {
	char *name;
	struct phttp_config cfg;
	struct stop *stop;
	pthread_mutex_t lock; /* the breaker */
	int failures;
	int64_t open_until;
	int probing;
};

int phttp_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : ERR_INTERNAL;
}

void phttp_global_cleanup(void)
{
	curl_global_cleanup();
}

int phttp_new(struct phttp **out, const struct phttp_config *cfg, struct stop *stop, struct err *e)
{
	*out = NULL;
	struct phttp *c = xcalloc(1, sizeof(*c));
	if (!c || !(c->name = xstrdup(cfg->name ? cfg->name : "provider"))) {
		xfree(c);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	c->cfg = *cfg;
	c->cfg.name = c->name;
	if (c->cfg.tries < 1)
		c->cfg.tries = 1;
	if (c->cfg.backoff_ms <= 0)
		c->cfg.backoff_ms = 250;
	if (c->cfg.retry_after_max_ms <= 0)
		c->cfg.retry_after_max_ms = 60000;
	if (c->cfg.connect_timeout_ms <= 0)
		c->cfg.connect_timeout_ms = 5000;
	if (!c->cfg.max_response)
		c->cfg.max_response = (size_t)4 << 20;
	c->stop = stop;
	pthread_mutex_init(&c->lock, NULL);
	*out = c;
	return 0;
}

void phttp_free(struct phttp *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	xfree(c->name);
	xfree(c);
}

void phttp_response_free(struct phttp_response *r)
{
	xfree(r->body);
	r->body = NULL;
	r->n = 0;
}

/* ---- the circuit breaker ------------------------------------------------------- */

/* 1 when a call may go; *probe is then 1 when it is the half-open probe,
 * the one call whose result may close the circuit or that frees the slot. */
static int breaker_allows(struct phttp *c, int *probe)
{
	*probe = 0;
	if (c->cfg.breaker_failures <= 0)
		return 1;
	int64_t now = time_now_ms();
	int ok = 1;
	pthread_mutex_lock(&c->lock);
	if (c->failures >= c->cfg.breaker_failures) {
		if (now < c->open_until || c->probing)
			ok = 0;
		else
			c->probing = *probe = 1; /* half-open: this call is the probe */
	}
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* A call's result. Once the circuit is open only the probe's counts: a call
 * that started before it opened says nothing about the provider now. */
static void breaker_record(struct phttp *c, int success, int probe)
{
	if (c->cfg.breaker_failures <= 0)
		return;
	pthread_mutex_lock(&c->lock);
	int was_open = c->failures >= c->cfg.breaker_failures;
	if (was_open && !probe) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	if (probe)
		c->probing = 0;
	if (success) {
		c->failures = 0;
	} else if (++c->failures >= c->cfg.breaker_failures) {
		c->open_until = time_now_ms() + (int64_t)c->cfg.breaker_seconds * 1000;
		if (!was_open)
			log_warn("provider %s: circuit open for %d s after %d failures", c->name,
				 c->cfg.breaker_seconds, c->failures);
	}
	pthread_mutex_unlock(&c->lock);
	if (success && was_open)
		log_info("provider %s: circuit closed", c->name);
}

/* The call said nothing about the provider: the probe gives its slot back. */
static void breaker_release(struct phttp *c, int probe)
{
	if (!probe)
		return;
	pthread_mutex_lock(&c->lock);
	c->probing = 0;
	pthread_mutex_unlock(&c->lock);
}

int phttp_circuit_open(struct phttp *c)
{
	if (!c || c->cfg.breaker_failures <= 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	int open = c->failures >= c->cfg.breaker_failures && time_now_ms() < c->open_until;
	pthread_mutex_unlock(&c->lock);
	return open;
}

/* ---- Retry-After ------------------------------------------------------------------ */

long phttp_retry_after_ms(const char *value, int64_t now_s)
{
	char v[128];
	size_t n = 0;
	while (*value == ' ' || *value == '\t')
		value++;
	while (value[n] && value[n] != '\r' && value[n] != '\n' && n < sizeof(v) - 1) {
		v[n] = value[n];
		n++;
	}
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	v[n] = '\0';
	if (!n)
		return -1;
	size_t digits = strspn(v, "0123456789");
	if (digits == n) {
		if (n > 9)
			return 1000L * 999999999L; /* absurd; the cap takes it */
		return strtol(v, NULL, 10) * 1000L;
	}
	time_t t = curl_getdate(v, NULL);
	if (t == (time_t)-1)
		return -1;
	int64_t d = (int64_t)t - now_s;
	if (d < 0)
		return 0;
	return d > 999999999 ? 1000L * 999999999L : (long)d * 1000L;
}

/* ---- one attempt ------------------------------------------------------------------- */

struct attempt {
	struct phttp *c;
	const struct phttp_request *req;
	CURL *h;
	struct buf body;
	size_t received;
	char ctype[128];
	char retry_after[128];
	int decided, streaming;
	int too_big, cancelled, stream_stopped;
};

static int attempt_cancelled(struct attempt *a)
{
	if (stop_fired(a->c->stop))
		return 1;
	return a->req->cancelled && a->req->cancelled(a->req->ctx);
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct attempt *a = ud;
	size_t len = size * n;
	if (a->req->on_header)
		a->req->on_header(a->req->ctx, p, len);
	if (len >= 5 && !strncmp(p, "HTTP/", 5)) { /* a new response (after a 100, say) */
		a->ctype[0] = a->retry_after[0] = '\0';
	} else if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		snprintf(a->retry_after, sizeof(a->retry_after), "%.*s", (int)(len - 12), p + 12);
	} else if (len > 13 && !strncasecmp(p, "Content-Type:", 13)) {
		size_t k = 13;
		while (k < len && p[k] == ' ')
			k++;
		snprintf(a->ctype, sizeof(a->ctype), "%.*s", (int)(len - k), p + k);
	}
	return len;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct attempt *a = ud;
	size_t n = size * nmemb;
	if (!a->decided) {
		long status = 0;
		curl_easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &status);
		a->decided = 1;
		a->streaming = a->req->on_data && a->req->stream_type && status >= 200 && status < 300 &&
			       strcasestr(a->ctype, a->req->stream_type) != NULL;
	}
	if (n > a->c->cfg.max_response - a->received) {
		a->too_big = 1;
		return 0;
	}
	a->received += n;
	if (a->streaming) {
		if (a->req->on_data(a->req->ctx, p, n)) {
			a->stream_stopped = 1;
			return 0;
		}
		return n;
	}
	int rc = buf_append(&a->body, p, n);
	if (rc == BUF_TOOBIG)
		a->too_big = 1;
	return rc ? 0 : n;
}

static int on_progress(void *ud, curl_off_t a1, curl_off_t b, curl_off_t c2, curl_off_t d)
{
	(void)a1, (void)b, (void)c2, (void)d;
	struct attempt *a = ud;
	if (attempt_cancelled(a)) {
		a->cancelled = 1;
		return 1;
	}
	return 0;
}

/*
 * One easy handle per calling thread, reset between calls: its connection
 * cache survives the reset, so consecutive calls on a thread reuse the
 * provider's connection (and TLS session) instead of a handshake each.
 */
static pthread_key_t curl_key;
static pthread_once_t curl_key_once = PTHREAD_ONCE_INIT;
static int curl_key_ok;

static void curl_key_free(void *h) { curl_easy_cleanup(h); }
static void curl_key_make(void) { curl_key_ok = pthread_key_create(&curl_key, curl_key_free) == 0; }

static CURL *thread_curl(int *own)
{
	*own = 1;
	if (pthread_once(&curl_key_once, curl_key_make) != 0 || !curl_key_ok)
		return curl_easy_init();
	CURL *h = pthread_getspecific(curl_key);
	if (!h && (h = curl_easy_init()) != NULL && pthread_setspecific(curl_key, h) != 0)
		return h; /* kept by no one: this call's */
	*own = 0;
	return h;
}

/* Runs one attempt; returns its outcome and, for a provider failure,
 * whether another attempt may help (*retry). */
static enum phttp_outcome attempt_once(struct phttp *c, const struct phttp_request *req, struct phttp_response *resp,
				       long *retry_after_ms, int *retry, struct err *e)
{
	*retry = 0;
	*retry_after_ms = -1;
	int64_t left = req->deadline_ms - time_now_ms();
	if (left <= 0) {
		err_set(e, ERR_UNAVAILABLE, "%s: deadline passed", c->name);
		return PHTTP_LOCAL;
	}
	if (req->attempt_begin)
		req->attempt_begin(req->ctx);
	struct attempt a = { .c = c, .req = req };
	buf_init(&a.body, c->cfg.max_response);
	struct curl_slist *h = NULL;
	int oom = 0;
	for (int i = 0; i < req->nheaders && !oom; i++) {
		struct curl_slist *t = curl_slist_append(h, req->headers[i]);
		if (!t)
			oom = 1;
		else
			h = t;
	}
	int own = 0;
	CURL *curl = oom ? NULL : thread_curl(&own);
	if (!curl) {
		curl_slist_free_all(h);
		buf_free(&a.body);
		err_set(e, ERR_INTERNAL, "%s: out of memory", c->name);
		return PHTTP_LOCAL;
	}
	a.h = curl;
	long timeout = req->attempt_timeout_ms > 0 ? (long)MIN((int64_t)req->attempt_timeout_ms, left) : (long)left;
	curl_easy_setopt(curl, CURLOPT_URL, req->url);
	if (h)
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
	if (req->body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
	}
	if (req->method && !strcmp(req->method, "HEAD"))
		curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
	else if (req->method)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
	if (req->aws_sigv4) {
		curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, req->aws_sigv4);
		curl_easy_setopt(curl, CURLOPT_USERNAME, req->aws_key ? req->aws_key : "");
		curl_easy_setopt(curl, CURLOPT_PASSWORD, req->aws_secret ? req->aws_secret : "");
	}
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &a);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &a);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, MIN(timeout, c->cfg.connect_timeout_ms));
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, req->follow_redirects ? 1L : 0L);
	if (req->follow_redirects) {
		curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 3L);
		curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	}
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	CURLcode cc = curl_easy_perform(curl);
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (own)
		curl_easy_cleanup(curl);
	else /* keeps its connections; forgets this call's headers, body and callbacks */
		curl_easy_reset(curl);
	curl_slist_free_all(h);

	resp->status = status;
	resp->streamed = a.streaming;
	if (a.retry_after[0])
		*retry_after_ms = phttp_retry_after_ms(a.retry_after, (int64_t)time(NULL));
	enum phttp_outcome out;
	if (a.cancelled || (cc != CURLE_OK && attempt_cancelled(&a))) {
		err_set(e, ERR_UNAVAILABLE, "%s: cancelled", c->name);
		out = PHTTP_CANCELLED;
	} else if (a.too_big) {
		err_set(e, ERR_UNAVAILABLE, "%s: the answer is larger than %zu bytes", c->name, c->cfg.max_response);
		out = PHTTP_PROVIDER; /* another try would bring the same */
	} else if (a.streaming) {
		/* The caller's parser says how the stream ended: whole, broken off
		 * or malformed (the provider's), or stopped by the caller (ours). */
		int v = req->stream_end ? req->stream_end(req->ctx, cc == CURLE_OK, e) : PHTTP_ACCEPT;
		if (v == PHTTP_ACCEPT && (cc == CURLE_OK || a.stream_stopped)) {
			out = PHTTP_OK;
		} else if (v == PHTTP_REFUSE) {
			if (!e->code)
				err_set(e, ERR_UNAVAILABLE, "%s: cancelled", c->name);
			out = PHTTP_CANCELLED;
		} else {
			if (!e->code)
				err_set(e, ERR_UNAVAILABLE, "%s: the stream broke off (%s)", c->name,
					curl_easy_strerror(cc));
			out = PHTTP_PROVIDER;
			*retry = 1;
		}
	} else if (cc != CURLE_OK && (status == 0 || cc == CURLE_OPERATION_TIMEDOUT)) {
		err_set(e, ERR_UNAVAILABLE, "%s: %s", c->name, curl_easy_strerror(cc));
		out = PHTTP_PROVIDER;
		*retry = 1;
	} else if (status == 429 || status == 408 || status >= 500) {
		err_set(e, ERR_UNAVAILABLE, "%s answered %ld", c->name, status);
		out = PHTTP_PROVIDER;
		*retry = 1;
	} else if (status < 200 || status >= 300) {
		if (req->on_refused)
			req->on_refused(req->ctx, status, a.body.p ? a.body.p : "", a.body.n);
		err_set(e, ERR_UNAVAILABLE, "%s answered %ld", c->name, status);
		out = PHTTP_LOCAL; /* our request or our key: another try will not help */
	} else if (cc != CURLE_OK) {
		err_set(e, ERR_UNAVAILABLE, "%s: %s", c->name, curl_easy_strerror(cc));
		out = PHTTP_PROVIDER;
		*retry = 1;
	} else {
		int v = req->check ? req->check(req->ctx, a.body.p ? a.body.p : "", a.body.n, e) : PHTTP_ACCEPT;
		if (v == PHTTP_ACCEPT) {
			out = PHTTP_OK;
			if (!a.body.p && buf_append(&a.body, "", 0)) {
				err_set(e, ERR_INTERNAL, "%s: out of memory", c->name);
				out = PHTTP_LOCAL;
			}
			resp->n = a.body.n;
			resp->body = buf_steal(&a.body);
			if (out == PHTTP_OK && !resp->body) {
				err_set(e, ERR_INTERNAL, "%s: out of memory", c->name);
				out = PHTTP_LOCAL;
			}
		} else {
			if (!e->code)
				err_set(e, ERR_UNAVAILABLE, "%s sent a malformed answer", c->name);
			out = v == PHTTP_BAD_ANSWER ? PHTTP_PROVIDER : PHTTP_LOCAL;
			*retry = v == PHTTP_BAD_ANSWER;
		}
	}
	buf_free(&a.body);
	return out;
}

/* Sleeps `ms` unless the call is cancelled first (returns 1 then). */
static int backoff_sleep(struct phttp *c, const struct phttp_request *req, long ms)
{
	while (ms > 0) {
		long slice = req->cancelled ? MIN(ms, (long)SLEEP_SLICE_MS) : ms;
		if (stop_sleep_ms(c->stop, slice))
			return 1;
		if (req->cancelled && req->cancelled(req->ctx))
			return 1;
		ms -= slice;
	}
	return stop_fired(c->stop) || (req->cancelled && req->cancelled(req->ctx));
}

static long backoff_ms(struct phttp *c, int attempt, long retry_after)
{
	unsigned r = 0;
	if (random_bytes(&r, sizeof(r)))
		r = (unsigned)time_now_ms();
	double jitter = (double)(r % 1000) / 1000.0;
	long base = c->cfg.backoff_ms;
	for (int i = 0; i < attempt && base < BACKOFF_MAX_MS; i++)
		base *= 2;
	if (base > BACKOFF_MAX_MS)
		base = BACKOFF_MAX_MS;
	long wait = (long)((double)base * (0.75 + 0.5 * jitter));
	if (retry_after >= 0) {
		/* A floor: jitter only adds to it (so that many callers told the
		 * same moment do not all come back at once). */
		long ra = MIN(retry_after, c->cfg.retry_after_max_ms);
		long floor = (long)((double)ra * (1.0 + 0.25 * jitter));
		if (wait < floor)
			wait = floor;
	}
	return wait;
}

int phttp_call(struct phttp *c, const struct phttp_request *req, struct phttp_response *resp, struct err *e)
{
	memset(resp, 0, sizeof(*resp));
	if (stop_fired(c->stop) || (req->cancelled && req->cancelled(req->ctx))) {
		resp->outcome = PHTTP_CANCELLED;
		return err_set(e, ERR_UNAVAILABLE, "%s: cancelled", c->name);
	}
	int probe;
	if (!breaker_allows(c, &probe)) {
		resp->outcome = PHTTP_OPEN;
		return err_set(e, ERR_UNAVAILABLE, "%s: circuit open", c->name);
	}
	int tries = req->tries > 0 ? req->tries : c->cfg.tries;
	enum phttp_outcome out = PHTTP_LOCAL;
	for (int t = 0; t < tries; t++) {
		long retry_after = -1;
		int retry = 0;
		err_clear(e);
		out = attempt_once(c, req, resp, &retry_after, &retry, e);
		resp->attempts = t + 1;
		if (out != PHTTP_PROVIDER || !retry || t == tries - 1)
			break;
		if (req->committed && req->committed(req->ctx))
			break; /* the reader saw part of this answer */
		long wait = backoff_ms(c, t, retry_after);
		if (time_now_ms() + wait >= req->deadline_ms)
			break; /* no time to wait for it: the caller may try elsewhere now */
		log_warn("%s; retry in %ld ms", e->msg, wait);
		if (backoff_sleep(c, req, wait)) {
			out = PHTTP_CANCELLED;
			err_set(e, ERR_UNAVAILABLE, "%s: cancelled", c->name);
			break;
		}
	}
	resp->outcome = out;
	if (out == PHTTP_OK)
		breaker_record(c, 1, probe);
	else if (out == PHTTP_PROVIDER)
		breaker_record(c, 0, probe);
	else
		breaker_release(c, probe);
	if (out != PHTTP_OK) {
		phttp_response_free(resp);
		return e->code ? e->code : err_set(e, ERR_UNAVAILABLE, "%s failed", c->name);
	}
	return 0;
}
