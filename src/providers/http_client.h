/*
 * The one HTTP client of every remote provider (language models, embeddings,
 * JWKS, speech, metadata and blob storage). One `struct phttp` per
 * endpoint holds that endpoint's circuit breaker and limits; a call
 * (phttp_call) is one logical request with:
 *   - an absolute deadline: no attempt, backoff or Retry-After wait goes past it;
 *   - cancellation: the owner's stop (given at construction) and the call's own
 *     `cancelled(ctx)`, both checked while the transfer runs and while a
 *     backoff sleeps (a fired stop ends the sleep at once);
 *   - retries with jittered exponential backoff; a Retry-After (seconds or an
 *     HTTP-date) is a floor on the wait, capped, and never waited past the
 *     deadline;
 *   - a circuit breaker: `breaker_failures` failed calls in a row open it for
 *     `breaker_seconds`, then one call is let through (half-open) as a probe;
 *     while it is open, only that probe's result closes or reopens it (a call
 *     that started before it opened counts for nothing);
 *   - a response cap: a longer answer is an error that says so, never a
 *     truncated body.
 *
 * What counts against the breaker is the provider's health only: connection
 * errors, timeouts, 5xx, 429 and answers the caller finds malformed. A local
 * failure — cancellation, our deadline spent before a request was sent, out of
 * memory, a request the provider refused as ours to fix (4xx other than
 * 408/429) — gives a half-open probe slot back and counts for nothing.
 *
 * Streaming: with `stream_type` set, a 2xx answer of that Content-Type goes
 * to `on_data` as it arrives instead of being buffered. Once the caller has
 * handed part of it on (`committed`), the call is not retried.
 */
#ifndef BOOKD_HTTP_CLIENT_H
#define BOOKD_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/err.h"
#include "../core/stop.h"

/* libcurl's process-wide set-up and tear-down: once, at start-up before any
 * thread is made, and at exit after every thread is joined. */
int phttp_global_init(void) WUR;
void phttp_global_cleanup(void);

struct phttp_config {
	const char *name;	 /* for messages: "openai", "embeddings", "JWKS" */
	int tries;		 /* attempts per call (>= 1) */
	int breaker_failures;	 /* failed calls in a row that open the circuit; 0 = no breaker */
	int breaker_seconds;	 /* how long it stays open */
	size_t max_response;	 /* bytes of an answer, streamed or not */
	long backoff_ms;	 /* first retry delay (doubles), 0 = 250 */
	long retry_after_max_ms; /* cap on a Retry-After wait, 0 = 60 s */
	long connect_timeout_ms; /* 0 = 5 s */
};

/* The call's verdict on why it ended (also in phttp_response.outcome). */
enum phttp_outcome {
	PHTTP_OK = 0,
	PHTTP_CANCELLED,  /* the stop fired or cancelled(ctx) said so */
	PHTTP_LOCAL,	  /* ours: deadline spent before sending, out of memory, 4xx */
	PHTTP_PROVIDER,	  /* the provider's: unreachable, timeout, 5xx, 429, bad answer */
	PHTTP_OPEN,	  /* the circuit is open: nothing was sent */
};

/* What `check` and `stream_end` answer. */
enum phttp_verdict {
	PHTTP_ACCEPT = 0,
	PHTTP_BAD_ANSWER = 1, /* the provider's fault: retried, counts against it */
	PHTTP_REFUSE = 2,     /* not retried, not held against the provider */
};

struct phttp_request {
	const char *url;
	const char *const *headers; /* "Name: value" lines */
	int nheaders;
	const char *body; /* POST when non-NULL, else GET */
	size_t body_len;
	int64_t deadline_ms;	  /* absolute, time_now_ms() clock */
	long attempt_timeout_ms;  /* one attempt; 0 = until the deadline */
	int tries;		  /* 0 = the client's */
	int (*cancelled)(void *ctx);
	int follow_redirects; /* up to 3, http(s) only (Open Library's /isbn/ answers 302) */
	/* Streaming (all optional): a new attempt begins (reset parser state);
	 * a piece of a streamed answer (non-zero stops the transfer; the call
	 * ends as `stream_end` then says); the stream ended. */
	const char *stream_type; /* e.g. "text/event-stream" */
	void (*attempt_begin)(void *ctx);
	int (*on_data)(void *ctx, const char *p, size_t n);
	int (*stream_end)(void *ctx, int transfer_ok, struct err *e);
	int (*committed)(void *ctx); /* non-zero: the caller has handed part of the answer on */
	/* A whole 2xx answer (not streamed): PHTTP_ACCEPT, or why not. */
	int (*check)(void *ctx, const char *body, size_t n, struct err *e);
	void *ctx;
	/* Object stores (all optional). `method` "PUT", "DELETE" or "HEAD"
	 * (NULL: POST with a body, else GET); a PUT sends `body`. With
	 * `aws_sigv4` set (CURLOPT_AWS_SIGV4, e.g. "aws:amz:us-east-1:s3"),
	 * libcurl signs each attempt with aws_key / aws_secret. `on_header` sees
	 * every response header line of every attempt; `on_refused` the body of
	 * an answer that is not 2xx (an S3 error document). */
	const char *method;
	const char *aws_sigv4, *aws_key, *aws_secret;
	void (*on_header)(void *ctx, const char *line, size_t n);
	void (*on_refused)(void *ctx, long status, const char *body, size_t n);
};

struct phttp_response {
	long status;
	enum phttp_outcome outcome;
	int streamed;	/* the answer went to on_data */
	char *body;	/* a whole answer (xfree), NUL-terminated; NULL when streamed */
	size_t n;
	int attempts;
};

struct phttp;

int phttp_new(struct phttp **out, const struct phttp_config *cfg, struct stop *stop, struct err *e) WUR;
void phttp_free(struct phttp *c);
/* 0 with a 2xx answer; else ERR_UNAVAILABLE (resp->outcome says whose fault)
 * and `e` says what went wrong, naming the provider. */
int phttp_call(struct phttp *c, const struct phttp_request *req, struct phttp_response *resp, struct err *e) WUR;
void phttp_response_free(struct phttp_response *r);
/* 1 while the circuit is open (for /health and logs). */
int phttp_circuit_open(struct phttp *c);

/* Exposed for tests: milliseconds a Retry-After value asks for (seconds or an
 * HTTP-date, relative to `now_s`), or -1 when it is neither. */
long phttp_retry_after_ms(const char *value, int64_t now_s);

#endif
