#include "llm.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
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

#define MAX_PROVIDERS 8
#define RESPONSE_MAX ((size_t)4 << 20)

enum wire { WIRE_OPENAI, WIRE_ANTHROPIC };

struct provider {
	char name[32], model[128];
	char *url, *key;
	enum wire wire;
	int timeout_s;
	/* circuit breaker */
	pthread_mutex_t lock;
	int failures;
	int64_t open_until;
	int probing;
};

struct llm_chain {
	int n;
	int tries, breaker_failures, breaker_seconds;
	struct provider p[MAX_PROVIDERS];
};

/* One wire format: how to ask, and how to read the answer. */
struct llm_ops {
	const char *path;
	void (*headers)(const struct provider *p, struct curl_slist **h);
	json_t *(*body)(const struct provider *p, const struct llm_request *r);
	int (*parse)(const char *body, size_t n, struct llm_result *res);
	/* A streamed event's data: 1 = end of stream, 0 = go on, -1 = error. */
	int (*event)(const char *event, json_t *data, struct llm_result *res, struct buf *piece);
};

/* ---- OpenAI-compatible chat completions ----------------------------------------- */

static void openai_headers(const struct provider *p, struct curl_slist **h)
{
	char auth[600];
	if (p->key && *p->key) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", p->key);
		*h = curl_slist_append(*h, auth);
	}
}

static json_t *openai_body(const struct provider *p, const struct llm_request *r)
{
	json_t *msgs = json_array();
	if (r->system)
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", r->system));
	for (int i = 0; i < r->nmessages; i++)
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", r->messages[i].role, "content",
						      r->messages[i].content));
	return json_pack("{s:s, s:o, s:i, s:f, s:b}", "model", p->model, "messages", msgs, "max_tokens", r->max_tokens,
			 "temperature", r->temperature, "stream", r->stream);
}

static void usage_openai(json_t *u, struct llm_result *res)
{
	if (json_is_integer(json_object_get(u, "prompt_tokens")))
		res->prompt_tokens = (int)json_integer_value(json_object_get(u, "prompt_tokens"));
	if (json_is_integer(json_object_get(u, "completion_tokens")))
		res->completion_tokens = (int)json_integer_value(json_object_get(u, "completion_tokens"));
}

static int openai_parse(const char *body, size_t n, struct llm_result *res)
{
	json_t *doc = json_loadb(body, n, 0, NULL);
	json_t *msg = json_object_get(json_array_get(json_object_get(doc, "choices"), 0), "message");
	const char *text = json_string_value(json_object_get(msg, "content"));
	int rc = -1;
	if (text) {
		res->text = xstrdup(text);
		usage_openai(json_object_get(doc, "usage"), res);
		rc = res->text ? 0 : -1;
	}
	json_decref(doc);
	return rc;
}

static int openai_event(const char *event, json_t *data, struct llm_result *res, struct buf *piece)
{
	(void)event;
	if (!data)
		return -1;
	json_t *choice = json_array_get(json_object_get(data, "choices"), 0);
	const char *text = json_string_value(json_object_get(json_object_get(choice, "delta"), "content"));
	if (text && buf_puts(piece, text))
		return -1;
	usage_openai(json_object_get(data, "usage"), res);
	return 0;
}

/* ---- Anthropic Messages --------------------------------------------------------- */

static void anthropic_headers(const struct provider *p, struct curl_slist **h)
{
	char key[600];
	snprintf(key, sizeof(key), "x-api-key: %s", p->key ? p->key : "");
	*h = curl_slist_append(*h, key);
	*h = curl_slist_append(*h, "anthropic-version: 2023-06-01");
}

static json_t *anthropic_body(const struct provider *p, const struct llm_request *r)
{
	json_t *msgs = json_array();
	for (int i = 0; i < r->nmessages; i++)
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", r->messages[i].role, "content",
						      r->messages[i].content));
	json_t *o = json_pack("{s:s, s:o, s:i, s:f, s:b}", "model", p->model, "messages", msgs, "max_tokens",
			      r->max_tokens, "temperature", r->temperature, "stream", r->stream);
	if (o && r->system)
		json_object_set_new(o, "system", json_string(r->system));
	return o;
}

static int anthropic_parse(const char *body, size_t n, struct llm_result *res)
{
	json_t *doc = json_loadb(body, n, 0, NULL);
	json_t *content = json_object_get(doc, "content");
	struct buf text;
	buf_init(&text, RESPONSE_MAX);
	size_t i;
	json_t *block;
	int ok = json_is_array(content);
	json_array_foreach(content, i, block) {
		const char *t = json_string_value(json_object_get(block, "text"));
		if (t && buf_puts(&text, t))
			ok = 0;
	}
	json_t *u = json_object_get(doc, "usage");
	res->prompt_tokens = (int)json_integer_value(json_object_get(u, "input_tokens"));
	res->completion_tokens = (int)json_integer_value(json_object_get(u, "output_tokens"));
	json_decref(doc);
	if (!ok) {
		buf_free(&text);
		return -1;
	}
	res->text = buf_steal(&text);
	return res->text ? 0 : -1;
}

static int anthropic_event(const char *event, json_t *data, struct llm_result *res, struct buf *piece)
{
	const char *type = json_string_value(json_object_get(data, "type"));
	if (!type)
		type = event;
	if (!type || !data)
		return -1;
	if (!strcmp(type, "error"))
		return -1;
	if (!strcmp(type, "message_stop"))
		return 1;
	if (!strcmp(type, "message_start")) {
		json_t *u = json_object_get(json_object_get(data, "message"), "usage");
		res->prompt_tokens = (int)json_integer_value(json_object_get(u, "input_tokens"));
	} else if (!strcmp(type, "content_block_delta")) {
		const char *t = json_string_value(json_object_get(json_object_get(data, "delta"), "text"));
		if (t && buf_puts(piece, t))
			return -1;
	} else if (!strcmp(type, "message_delta")) {
		json_t *u = json_object_get(data, "usage");
		if (json_is_integer(json_object_get(u, "output_tokens")))
			res->completion_tokens = (int)json_integer_value(json_object_get(u, "output_tokens"));
	}
	return 0;
}

static const struct llm_ops wire_ops[] = {
	[WIRE_OPENAI] = { "/chat/completions", openai_headers, openai_body, openai_parse, openai_event },
	[WIRE_ANTHROPIC] = { "/messages", anthropic_headers, anthropic_body, anthropic_parse, anthropic_event },
};

/* ---- one HTTP call ------------------------------------------------------------ */

struct call {
	const struct llm_ops *ops;
	const struct llm_request *req;
	struct llm_result *res;
	struct buf body;     /* a non-streamed answer, or an error body */
	struct buf line;     /* streaming: the current line */
	struct buf text;     /* streaming: everything said so far */
	char event[64];      /* streaming: the current SSE event name */
	int streaming_ok;    /* status 200 and a text/event-stream answer */
	int ended, failed, cancelled;
	long retry_after;
};

static int deliver(struct call *c, const char *t, size_t n)
{
	if (!n)
		return 0;
	if (buf_append(&c->text, t, n))
		return -1;
	c->res->delivered += (int)n;
	if (c->req->on_delta && c->req->on_delta(c->req->ctx, t, n)) {
		c->cancelled = 1;
		return -1;
	}
	return 0;
}

static int stream_line(struct call *c, const char *line, size_t n)
{
	if (n && line[n - 1] == '\r')
		n--;
	if (n == 0) {
		c->event[0] = '\0';
		return 0;
	}
	if (n >= 6 && !strncmp(line, "event:", 6)) {
		size_t k = 6;
		while (k < n && line[k] == ' ')
			k++;
		snprintf(c->event, sizeof(c->event), "%.*s", (int)(n - k), line + k);
		return 0;
	}
	if (n < 5 || strncmp(line, "data:", 5))
		return 0; /* comments, ids, retry: */
	size_t k = 5;
	while (k < n && line[k] == ' ')
		k++;
	if (n - k == 6 && !strncmp(line + k, "[DONE]", 6)) {
		c->ended = 1;
		return 0;
	}
	json_t *data = json_loadb(line + k, n - k, 0, NULL);
	struct buf piece;
	buf_init(&piece, RESPONSE_MAX);
	int r = c->ops->event(c->event[0] ? c->event : NULL, data, c->res, &piece);
	json_decref(data);
	if (r < 0) {
		buf_free(&piece);
		c->failed = 1;
		return -1;
	}
	if (r > 0)
		c->ended = 1;
	int rc = deliver(c, piece.p ? piece.p : "", piece.n);
	buf_free(&piece);
	return rc;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
	struct call *c = ud;
	size_t n = size * nmemb;
	if (!c->streaming_ok)
		return buf_append(&c->body, p, n) ? 0 : n;
	for (size_t i = 0; i < n; i++) {
		if (p[i] != '\n') {
			if (buf_putc(&c->line, p[i]))
				return 0;
			continue;
		}
		int rc = stream_line(c, c->line.p ? c->line.p : "", c->line.n);
		buf_reset(&c->line);
		if (rc)
			return 0; /* aborts the transfer */
	}
	return n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct call *c = ud;
	size_t len = size * n;
	if (len > 12 && !strncasecmp(p, "Retry-After:", 12)) {
		char *end;
		long v = strtol(p + 12, &end, 10);
		if (end != p + 12 && v >= 0)
			c->retry_after = v;
	}
	if (len > 13 && !strncasecmp(p, "Content-Type:", 13) && strstr(p, "text/event-stream"))
		c->streaming_ok = c->req->stream;
	return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c2, curl_off_t d)
{
	(void)a, (void)b, (void)c2, (void)d;
	struct call *c = ud;
	if (c->req->cancelled && c->req->cancelled(c->req->ctx)) {
		c->cancelled = 1;
		return 1;
	}
	return 0;
}

enum outcome { OK, RETRY, FAIL, CANCEL };

/*
 * One easy handle per calling thread, reset between calls: its connection
 * cache survives the reset, so consecutive answers on a thread reuse the
 * provider's connection (and TLS session) instead of a handshake each.
 */
static pthread_key_t curl_key;
static pthread_once_t curl_key_once = PTHREAD_ONCE_INIT;
static int curl_key_ok;

static void curl_key_free(void *h) { curl_easy_cleanup(h); }
static void curl_key_make(void) { curl_key_ok = pthread_key_create(&curl_key, curl_key_free) == 0; }

/* The thread's handle (*own = 0), or, when it cannot keep one, a handle of
 * this call's own (*own = 1: clean it up). */
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

static enum outcome call_once(struct provider *p, const struct llm_request *req, struct llm_result *res,
			      long *retry_after, struct err *e)
{
	const struct llm_ops *ops = &wire_ops[p->wire];
	int64_t left = req->deadline_ms - time_now_ms();
	if (left <= 0) {
		err_set(e, ERR_UNAVAILABLE, "deadline passed");
		return FAIL;
	}
	json_t *body = ops->body(p, req);
	char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	char url[2048];
	snprintf(url, sizeof(url), "%s%s", p->url, ops->path);
	struct call c = { .ops = ops, .req = req, .res = res, .retry_after = -1 };
	buf_init(&c.body, RESPONSE_MAX);
	buf_init(&c.line, RESPONSE_MAX);
	buf_init(&c.text, RESPONSE_MAX);
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	if (req->stream)
		h = curl_slist_append(h, "Accept: text/event-stream");
	ops->headers(p, &h);
	int own_curl;
	CURL *curl = thread_curl(&own_curl);
	long status = 0;
	CURLcode cc = CURLE_FAILED_INIT;
	long timeout_ms = (long)MIN((int64_t)p->timeout_s * 1000, left);
	if (curl && payload && h) {
		curl_easy_setopt(curl, CURLOPT_URL, url);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(curl, CURLOPT_WRITEDATA, &c);
		curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
		curl_easy_setopt(curl, CURLOPT_HEADERDATA, &c);
		curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &c);
		curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
		curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, MIN(timeout_ms, 5000L));
		curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
		cc = curl_easy_perform(curl);
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	}
	if (own_curl)
		curl_easy_cleanup(curl);
	else if (curl) /* keeps its connections; forgets this call's headers, body and callbacks */
		curl_easy_reset(curl);
	curl_slist_free_all(h);
	free(payload);
	enum outcome out;
	*retry_after = c.retry_after;
	if (c.cancelled) {
		err_set(e, ERR_UNAVAILABLE, "cancelled");
		out = CANCEL;
	} else if (status == 429 || status >= 500 || (cc != CURLE_OK && !c.failed && status == 0) ||
		   cc == CURLE_OPERATION_TIMEDOUT) {
		if (cc == CURLE_OK)
			err_set(e, ERR_UNAVAILABLE, "%s answered %ld", p->name, status);
		else
			err_set(e, ERR_UNAVAILABLE, "%s: %s", p->name, curl_easy_strerror(cc));
		out = RETRY;
	} else if (status != 200) {
		err_set(e, ERR_UNAVAILABLE, "%s answered %ld", p->name, status);
		out = FAIL; /* 4xx: our request or our key; another try will not help */
	} else if (req->stream && c.streaming_ok) {
		if (c.line.n) /* a last line without its newline */
			stream_line(&c, c.line.p, c.line.n);
		if (c.failed || !c.ended) {
			err_set(e, ERR_UNAVAILABLE, "%s: the stream broke off", p->name);
			out = RETRY;
		} else {
			res->text = buf_steal(&c.text);
			out = res->text ? OK : FAIL;
		}
	} else if (ops->parse(c.body.p ? c.body.p : "", c.body.n, res) == 0) {
		/* Asked to stream but answered whole: deliver it as one piece. */
		out = OK;
		if (req->stream && req->on_delta && res->text && *res->text) {
			res->delivered += (int)strlen(res->text);
			if (req->on_delta(req->ctx, res->text, strlen(res->text)))
				out = CANCEL;
		}
	} else {
		err_set(e, ERR_UNAVAILABLE, "%s sent a malformed answer", p->name);
		out = RETRY;
	}
	buf_free(&c.body);
	buf_free(&c.line);
	buf_free(&c.text);
	return out;
}

/* ---- breaker and chain ----------------------------------------------------------- */

static int breaker_allows(struct llm_chain *ch, struct provider *p)
{
	int64_t now = time_now_ms();
	int ok = 1;
	pthread_mutex_lock(&p->lock);
	if (p->failures >= ch->breaker_failures) {
		if (now < p->open_until || p->probing)
			ok = 0;
		else
			p->probing = 1; /* half-open: this call is the probe */
	}
	pthread_mutex_unlock(&p->lock);
	return ok;
}

static void breaker_record(struct llm_chain *ch, struct provider *p, int success)
{
	pthread_mutex_lock(&p->lock);
	int was_open = p->failures >= ch->breaker_failures;
	p->probing = 0;
	if (success) {
		p->failures = 0;
	} else if (++p->failures >= ch->breaker_failures) {
		p->open_until = time_now_ms() + (int64_t)ch->breaker_seconds * 1000;
		if (!was_open)
			log_warn("LLM provider %s: circuit open for %d s after %d failures", p->name,
				 ch->breaker_seconds, p->failures);
	}
	pthread_mutex_unlock(&p->lock);
	if (success && was_open)
		log_info("LLM provider %s: circuit closed", p->name);
}

/* A call that ended without telling anything about the provider (the client
 * went away): a half-open probe slot is given back. */
static void breaker_release(struct provider *p)
{
	pthread_mutex_lock(&p->lock);
	p->probing = 0;
	pthread_mutex_unlock(&p->lock);
}

static void sleep_until(int64_t deadline, long ms)
{
	int64_t left = deadline - time_now_ms();
	if (ms > left)
		ms = (long)(left > 0 ? left : 0);
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int llm_complete(struct llm_chain *ch, const struct llm_request *req, struct llm_result *res, struct err *e)
{
	memset(res, 0, sizeof(*res));
	if (!ch || !ch->n)
		return err_set(e, ERR_UNAVAILABLE, "no language model is configured");
	for (int i = 0; i < ch->n; i++) {
		struct provider *p = &ch->p[i];
		if (!breaker_allows(ch, p)) {
			err_set(e, ERR_UNAVAILABLE, "%s: circuit open", p->name);
			continue;
		}
		int ok = 0;
		for (int t = 0; t < ch->tries; t++) {
			long retry_after = -1;
			enum outcome o = call_once(p, req, res, &retry_after, e);
			if (o == OK) {
				ok = 1;
				break;
			}
			if (o == CANCEL) {
				breaker_release(p); /* not a verdict on the provider */
				return ERR_UNAVAILABLE;
			}
			if (res->delivered)
				break; /* the reader saw part of this answer: no retry, no failover */
			if (o == FAIL || t == ch->tries - 1 || time_now_ms() >= req->deadline_ms)
				break;
			unsigned r;
			random_bytes(&r, sizeof(r));
			double jitter = (double)(r % 1000) / 1000.0;
			/* Retry-After is a floor: jitter only adds to it. Our own backoff
			 * spreads both ways. */
			long wait = retry_after >= 0 ? (long)((double)retry_after * 1000.0 * (1.0 + 0.25 * jitter))
						     : (long)((double)(250L << t) * (0.75 + 0.5 * jitter));
			if (time_now_ms() + wait >= req->deadline_ms)
				break; /* no time to wait for it: let the next provider try now */
			log_warn("LLM provider %s: %s; retry in %ld ms", p->name, e->msg, wait);
			sleep_until(req->deadline_ms, wait);
			if (req->cancelled && req->cancelled(req->ctx)) {
				breaker_release(p); /* not a verdict on the provider */
				return err_set(e, ERR_UNAVAILABLE, "cancelled");
			}
		}
		breaker_record(ch, p, ok);
		if (ok) {
			snprintf(res->provider, sizeof(res->provider), "%s", p->name);
			snprintf(res->model, sizeof(res->model), "%s", p->model);
			if (!res->completion_tokens)
				res->completion_tokens = (int)((strlen(res->text) + 3) / 4);
			return 0;
		}
		if (res->delivered)
			return e->code ? e->code : ERR_UNAVAILABLE;
		log_warn("LLM provider %s failed: %s; trying the next", p->name, e->msg);
	}
	return e->code ? e->code : ERR_UNAVAILABLE;
}

void llm_result_free(struct llm_result *r)
{
	xfree(r->text);
	r->text = NULL;
}

/* ---- configuration ------------------------------------------------------------- */

static const struct {
	const char *name, *url;
	enum wire wire;
} known[] = {
	{ "openai", "https://api.openai.com/v1", WIRE_OPENAI },
	{ "gemini", "https://generativelanguage.googleapis.com/v1beta/openai", WIRE_OPENAI },
	{ "anthropic", "https://api.anthropic.com/v1", WIRE_ANTHROPIC },
	{ "ollama", "http://127.0.0.1:11434/v1", WIRE_OPENAI },
	{ "openrouter", "https://openrouter.ai/api/v1", WIRE_OPENAI },
};

static const char *env_for(const char *name, const char *what, char *buf, size_t cap)
{
	char var[96];
	size_t k = (size_t)snprintf(var, sizeof(var), "BOOKD_LLM_");
	for (const char *s = name; *s && k < sizeof(var) - 1; s++)
		var[k++] = (char)toupper((unsigned char)*s);
	snprintf(var + k, sizeof(var) - k, "_%s", what);
	const char *v = getenv(var);
	if (buf)
		snprintf(buf, cap, "%s", var);
	return v;
}

static int env_int(const char *name, const char *what, int def)
{
	const char *v = env_for(name, what, NULL, 0);
	if (!v || !*v)
		return def;
	char *end;
	long n = strtol(v, &end, 10);
	return *end || n <= 0 || n > 100000 ? -1 : (int)n;
}

int llm_chain_from_env(struct llm_chain **out, struct err *e)
{
	struct llm_chain *ch = xcalloc(1, sizeof(*ch));
	if (!ch)
		return err_set(e, ERR_INTERNAL, "out of memory");
	/* Chain-wide settings: BOOKD_LLM_TRIES, BOOKD_LLM_BREAKER_FAILURES, BOOKD_LLM_BREAKER_SECONDS. */
	const char *names[] = { "BOOKD_LLM_TRIES", "BOOKD_LLM_BREAKER_FAILURES", "BOOKD_LLM_BREAKER_SECONDS" };
	int *dst[] = { &ch->tries, &ch->breaker_failures, &ch->breaker_seconds };
	int defs[] = { 3, 3, 30 };
	for (int i = 0; i < 3; i++) {
		const char *v = getenv(names[i]);
		*dst[i] = defs[i];
		if (v && *v) {
			char *end;
			long n = strtol(v, &end, 10);
			if (*end || n < 1 || n > 3600) {
				llm_chain_free(ch);
				return err_set(e, ERR_INVALID, "%s must be an integer from 1 to 3600", names[i]);
			}
			*dst[i] = (int)n;
		}
	}
	const char *list = getenv("BOOKD_LLM_PROVIDERS");
	char *copy = xstrdup(list ? list : "");
	char *save = NULL;
	int rc = 0;
	for (char *item = strtok_r(copy, ",", &save); item && !rc; item = strtok_r(NULL, ",", &save)) {
		while (*item == ' ')
			item++;
		char *colon = strchr(item, ':');
		if (!colon || colon == item || !colon[1]) {
			rc = err_set(e, ERR_INVALID, "BOOKD_LLM_PROVIDERS: \"%s\" is not NAME:MODEL", item);
			break;
		}
		if (ch->n >= MAX_PROVIDERS) {
			rc = err_set(e, ERR_INVALID, "BOOKD_LLM_PROVIDERS: at most %d providers", MAX_PROVIDERS);
			break;
		}
		*colon = '\0';
		struct provider *p = &ch->p[ch->n];
		snprintf(p->name, sizeof(p->name), "%s", item);
		snprintf(p->model, sizeof(p->model), "%s", colon + 1);
		for (char *s = p->name; *s; s++)
			if (!isalnum((unsigned char)*s) && *s != '_') {
				rc = err_set(e, ERR_INVALID, "BOOKD_LLM_PROVIDERS: provider name \"%s\" must be letters, digits or _",
					     p->name);
				break;
			}
		if (rc)
			break;
		const char *def_url = NULL;
		enum wire wire = WIRE_OPENAI;
		for (size_t k = 0; k < ARRAY_LEN(known); k++)
			if (!strcasecmp(known[k].name, p->name)) {
				def_url = known[k].url;
				wire = known[k].wire;
			}
		char var[96];
		const char *url = env_for(p->name, "URL", var, sizeof(var));
		if (!url || !*url)
			url = def_url;
		if (!url) {
			rc = err_set(e, ERR_INVALID, "%s is required for the provider %s", var, p->name);
			break;
		}
		const char *api = env_for(p->name, "API", var, sizeof(var));
		if (api && *api) {
			if (!strcmp(api, "openai"))
				wire = WIRE_OPENAI;
			else if (!strcmp(api, "anthropic"))
				wire = WIRE_ANTHROPIC;
			else {
				rc = err_set(e, ERR_INVALID, "%s must be openai or anthropic", var);
				break;
			}
		}
		p->timeout_s = env_int(p->name, "TIMEOUT", 30);
		if (p->timeout_s < 0) {
			env_for(p->name, "TIMEOUT", var, sizeof(var));
			rc = err_set(e, ERR_INVALID, "%s must be a number of seconds", var);
			break;
		}
		const char *key = env_for(p->name, "KEY", NULL, 0);
		size_t ul = strlen(url);
		while (ul && url[ul - 1] == '/')
			ul--;
		p->url = xstrndup(url, ul);
		p->key = xstrdup(key ? key : "");
		p->wire = wire;
		pthread_mutex_init(&p->lock, NULL);
		ch->n++;
		if (!p->url || !p->key)
			rc = err_set(e, ERR_INTERNAL, "out of memory");
	}
	xfree(copy);
	if (rc) {
		llm_chain_free(ch);
		return rc;
	}
	*out = ch;
	return 0;
}

void llm_chain_free(struct llm_chain *ch)
{
	if (!ch)
		return;
	for (int i = 0; i < ch->n; i++) {
		xfree(ch->p[i].url);
		if (ch->p[i].key)
			memset(ch->p[i].key, 0, strlen(ch->p[i].key));
		xfree(ch->p[i].key);
		pthread_mutex_destroy(&ch->p[i].lock);
	}
	xfree(ch);
}

int llm_chain_size(const struct llm_chain *ch)
{
	return ch ? ch->n : 0;
}

void llm_chain_describe(const struct llm_chain *ch, char *out, size_t cap)
{
	size_t at = 0;
	out[0] = '\0';
	for (int i = 0; ch && i < ch->n && at < cap; i++) {
		struct provider *p = (struct provider *)&ch->p[i];
		pthread_mutex_lock(&p->lock);
		int open = p->failures >= ch->breaker_failures && time_now_ms() < p->open_until;
		pthread_mutex_unlock(&p->lock);
		at += (size_t)snprintf(out + at, cap - at, "%s%s:%s%s", i ? "," : "", p->name, p->model,
				       open ? " (circuit open)" : "");
	}
}
