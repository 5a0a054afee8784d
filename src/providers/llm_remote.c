/*
 * The remote links of the language-model chain: OpenAI-compatible chat
 * completions and Anthropic Messages, streamed (llm_sse.c) or not. Each link
 * owns one provider HTTP client (its breaker, its limits); this file only
 * says how to ask and how to read the answer.
 */
#include "llm.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/mem.h"
#include "http_client.h"
#include "llm_sse.h"

#define RESPONSE_MAX ((size_t)4 << 20)
#define HEADER_MAX 2048

struct remote {
	enum llm_wire wire;
	char *name, *model, *url, *key;
	int timeout_s;
	struct phttp *http;
};

/* ---- asking ----------------------------------------------------------------------- */

static json_t *request_body(const struct remote *r, const struct llm_request *q)
{
	json_t *msgs = json_array();
	if (q->system && r->wire == LLM_WIRE_OPENAI)
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", q->system));
	for (int i = 0; i < q->nmessages; i++)
		json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", q->messages[i].role, "content",
						      q->messages[i].content));
	json_t *o = json_pack("{s:s, s:o, s:i, s:f, s:b}", "model", r->model, "messages", msgs, "max_tokens",
			      q->max_tokens, "temperature", q->temperature, "stream", q->stream);
	if (o && q->system && r->wire == LLM_WIRE_ANTHROPIC && json_object_set_new(o, "system", json_string(q->system))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- reading a whole answer ---------------------------------------------------------- */

static int int_of(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
	return n < 0 ? 0 : n > 1000000000 ? 1000000000 : (int)n;
}

static int openai_parse(const char *body, size_t n, struct llm_result *res)
{
	json_t *doc = json_loadb(body, n, 0, NULL);
	json_t *msg = json_object_get(json_array_get(json_object_get(doc, "choices"), 0), "message");
	const char *text = json_string_value(json_object_get(msg, "content"));
	int rc = -1;
	if (text && (res->text = xstrdup(text)) != NULL) {
		json_t *u = json_object_get(doc, "usage");
		res->prompt_tokens = int_of(u, "prompt_tokens");
		res->completion_tokens = int_of(u, "completion_tokens");
		rc = 0;
	}
	json_decref(doc);
	return rc;
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
	res->prompt_tokens = int_of(u, "input_tokens");
	res->completion_tokens = int_of(u, "output_tokens");
	json_decref(doc);
	if (ok && !text.p && buf_puts(&text, ""))
		ok = 0;
	if (!ok) {
		buf_free(&text);
		return -1;
	}
	res->text = buf_steal(&text);
	return res->text ? 0 : -1;
}

/* ---- one call ------------------------------------------------------------------------- */

struct call {
	struct remote *r;
	const struct llm_request *req;
	struct llm_result *res;
	struct llm_sse sse;
	struct buf text; /* streamed: everything said so far */
	int client_gone;
};

static int call_text(void *ctx, const char *t, size_t n)
{
	struct call *c = ctx;
	if (buf_append(&c->text, t, n))
		return -1;
	c->res->delivered += (int)n;
	if (c->req->on_delta && c->req->on_delta(c->req->ctx, t, n)) {
		c->client_gone = 1;
		return -1;
	}
	return 0;
}

static void call_begin(void *ctx)
{
	struct call *c = ctx;
	llm_sse_reset(&c->sse);
	buf_reset(&c->text);
}

static int call_data(void *ctx, const char *p, size_t n)
{
	struct call *c = ctx;
	return llm_sse_feed(&c->sse, p, n);
}

static int call_stream_end(void *ctx, int transfer_ok, struct err *e)
{
	struct call *c = ctx;
	if (c->client_gone)
		return PHTTP_REFUSE;
	if (c->sse.state == LLM_SSE_STOPPED) { /* out of memory, or past the cap */
		err_set(e, ERR_UNAVAILABLE, "%s: the answer is larger than %zu bytes", c->r->name, RESPONSE_MAX);
		return PHTTP_BAD_ANSWER;
	}
	if (c->sse.state == LLM_SSE_MALFORMED) {
		err_set(e, ERR_UNAVAILABLE, "%s sent a malformed stream", c->r->name);
		return PHTTP_BAD_ANSWER;
	}
	if (llm_sse_finish(&c->sse)) {
		err_set(e, ERR_UNAVAILABLE, "%s: the stream broke off", c->r->name);
		return PHTTP_BAD_ANSWER;
	}
	(void)transfer_ok;
	return PHTTP_ACCEPT;
}

static int call_committed(void *ctx)
{
	struct call *c = ctx;
	return c->res->delivered > 0;
}

static int call_check(void *ctx, const char *body, size_t n, struct err *e)
{
	struct call *c = ctx;
	llm_result_free(c->res);
	int rc = c->r->wire == LLM_WIRE_OPENAI ? openai_parse(body, n, c->res) : anthropic_parse(body, n, c->res);
	if (rc) {
		err_set(e, ERR_UNAVAILABLE, "%s sent a malformed answer", c->r->name);
		return PHTTP_BAD_ANSWER;
	}
	return PHTTP_ACCEPT;
}

static int call_cancelled(void *ctx)
{
	struct call *c = ctx;
	return c->req->cancelled && c->req->cancelled(c->req->ctx);
}

static int remote_complete(void *self, const struct llm_request *req, struct llm_result *res, struct err *e)
{
	struct remote *r = self;
	int rc = ERR_INTERNAL;
	char *payload = NULL;
	char auth[HEADER_MAX];
	const char *headers[4];
	int nh = 0;
	struct call c = { .r = r, .req = req, .res = res };
	llm_sse_init(&c.sse, r->wire, RESPONSE_MAX, call_text, &c);
	buf_init(&c.text, RESPONSE_MAX);
	json_t *body = request_body(r, req);
	payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (!payload) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	headers[nh++] = "Content-Type: application/json";
	if (req->stream)
		headers[nh++] = "Accept: text/event-stream";
	if (r->wire == LLM_WIRE_OPENAI) {
		if (*r->key) {
			snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->key);
			headers[nh++] = auth;
		}
	} else {
		snprintf(auth, sizeof(auth), "x-api-key: %s", r->key);
		headers[nh++] = auth;
		headers[nh++] = "anthropic-version: 2023-06-01";
	}
	struct phttp_request hr = {
		.url = r->url,
		.headers = headers,
		.nheaders = nh,
		.body = payload,
		.body_len = strlen(payload),
		.deadline_ms = req->deadline_ms,
		.attempt_timeout_ms = (long)r->timeout_s * 1000,
		.cancelled = call_cancelled,
		.stream_type = req->stream ? "text/event-stream" : NULL,
		.attempt_begin = call_begin,
		.on_data = call_data,
		.stream_end = call_stream_end,
		.committed = call_committed,
		.check = call_check,
		.ctx = &c,
	};
	struct phttp_response resp;
	rc = phttp_call(r->http, &hr, &resp, e);
	if (rc) {
		res->cancelled = resp.outcome == PHTTP_CANCELLED;
		llm_result_free(res);
		goto out;
	}
	if (resp.streamed) {
		if (!c.text.p && buf_puts(&c.text, "")) {
			rc = err_set(e, ERR_INTERNAL, "out of memory");
			goto out_resp;
		}
		llm_result_free(res);
		res->text = buf_steal(&c.text);
		res->prompt_tokens = c.sse.prompt_tokens;
		res->completion_tokens = c.sse.completion_tokens;
	} else if (req->stream && req->on_delta && res->text && *res->text) {
		/* Asked to stream but answered whole: delivered as one piece. */
		size_t n = strlen(res->text);
		res->delivered += (int)n;
		if (req->on_delta(req->ctx, res->text, n)) {
			res->cancelled = 1;
			rc = err_set(e, ERR_UNAVAILABLE, "cancelled");
		}
	}
out_resp:
	phttp_response_free(&resp);
out:
	free(payload);
	buf_free(&c.text);
	llm_sse_free(&c.sse);
	return rc;
}

/* ---- a link ---------------------------------------------------------------------------- */

static void remote_close(void *self)
{
	struct remote *r = self;
	if (!r)
		return;
	phttp_free(r->http);
	xfree(r->name);
	xfree(r->model);
	xfree(r->url);
	if (r->key)
		memset(r->key, 0, strlen(r->key));
	xfree(r->key);
	xfree(r);
}

static int remote_open(void **self, const struct llm_link_config *lc, struct stop *stop, enum llm_wire wire,
		       struct err *e)
{
	*self = NULL;
	struct remote *r = xcalloc(1, sizeof(*r));
	if (!r)
		return err_set(e, ERR_INTERNAL, "out of memory");
	size_t ul = strlen(lc->url);
	while (ul && lc->url[ul - 1] == '/')
		ul--;
	const char *path = wire == LLM_WIRE_OPENAI ? "/chat/completions" : "/messages";
	r->wire = wire;
	r->timeout_s = lc->timeout_s > 0 ? lc->timeout_s : 30;
	r->name = xstrdup(lc->name);
	r->model = xstrdup(lc->model);
	r->key = xstrdup(lc->key ? lc->key : "");
	r->url = xmalloc(ul + strlen(path) + 1);
	if (!r->name || !r->model || !r->key || !r->url) {
		remote_close(r);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	memcpy(r->url, lc->url, ul);
	memcpy(r->url + ul, path, strlen(path) + 1);
	if (strlen(r->key) > HEADER_MAX - 32) {
		remote_close(r);
		return err_set(e, ERR_INVALID, "the key of the provider %s is too long", lc->name);
	}
	struct phttp_config hc = {
		.name = lc->name,
		.tries = lc->tries,
		.breaker_failures = lc->breaker_failures,
		.breaker_seconds = lc->breaker_seconds,
		.max_response = RESPONSE_MAX,
	};
	int rc = phttp_new(&r->http, &hc, stop, e);
	if (rc) {
		remote_close(r);
		return rc;
	}
	*self = r;
	return 0;
}

static int openai_open(void **self, const struct llm_link_config *lc, struct stop *stop, struct err *e)
{
	return remote_open(self, lc, stop, LLM_WIRE_OPENAI, e);
}

static int anthropic_open(void **self, const struct llm_link_config *lc, struct stop *stop, struct err *e)
{
	return remote_open(self, lc, stop, LLM_WIRE_ANTHROPIC, e);
}

static int remote_circuit_open(void *self)
{
	struct remote *r = self;
	return phttp_circuit_open(r->http);
}

const struct llm_ops llm_openai_ops = {
	.api = "openai",
	.remote = 1,
	.open = openai_open,
	.close = remote_close,
	.complete = remote_complete,
	.circuit_open = remote_circuit_open,
};

const struct llm_ops llm_anthropic_ops = {
	.api = "anthropic",
	.remote = 1,
	.open = anthropic_open,
	.close = remote_close,
	.complete = remote_complete,
	.circuit_open = remote_circuit_open,
};
