/*
 * The last link of every language-model chain: an answer without a model.
 * From the passages the request carries it picks the (at most three)
 * sentences that share the most words with the question, in order of score,
 * each followed by the [n] of its passage, and cites each passage used once,
 * quoting its first chosen sentence. It never fails for want of a network;
 * it declines a request that carries no passages (a rewrite, say).
 */
#include "llm.h"

#include <stdio.h>
#include <string.h>

#include "../core/arena.h"
#include "../core/buf.h"
#include "../core/mem.h"
#include "../core/text.h"
#include "../core/utf8.h"

#define SENTENCE_MAX 600 /* bytes of a sentence quoted in the answer */
#define QUOTE_MAX 240	 /* bytes of a citation's quote */

int llm_extractive_answer(const char *question, const struct llm_passage *passages, int np,
			  struct llm_result *res, struct err *e)
{
	struct arena a;
	arena_init(&a, 1024);
	const char **terms;
	int nt = text_terms(question ? question : "", &a, &terms);
	struct cand {
		int passage, score;
		struct text_sentence s;
	} best[LLM_MAX_CITES];
	int nb = 0;
	for (int i = 0; i < np; i++) {
		struct text_sentence ss[64];
		int ns = text_sentences(passages[i].text ? passages[i].text : "", ss, 64);
		for (int k = 0; k < ns; k++) {
			int sc = text_overlap(ss[k].p, ss[k].n, terms, nt) * 10 - i; /* ties: the better passage */
			if (sc <= 0)
				continue;
			int at;
			if (nb < LLM_MAX_CITES)
				at = nb++; /* a free slot */
			else if (best[LLM_MAX_CITES - 1].score >= sc)
				continue; /* no better than the worst kept */
			else
				at = LLM_MAX_CITES - 1; /* replaces the worst kept */
			best[at] = (struct cand){ i, sc, ss[k] };
			for (int j = at; j > 0 && best[j - 1].score < best[j].score; j--) {
				struct cand t = best[j];
				best[j] = best[j - 1];
				best[j - 1] = t;
			}
		}
	}
	arena_free(&a);
	struct buf out;
	buf_init(&out, 8192);
	int rc = 0;
	res->ncites = 0;
	if (!nb) {
		rc = buf_puts(&out, "I could not find anything about that in the book.");
	} else {
		for (int i = 0; i < nb && !rc; i++) {
			int n = best[i].passage + 1;
			size_t len = utf8_prefix(best[i].s.p, best[i].s.n, SENTENCE_MAX);
			rc = buf_printf(&out, "%s%.*s [%d]", i ? " " : "", (int)len, best[i].s.p, n);
			int seen = 0;
			for (int j = 0; j < i; j++)
				seen |= best[j].passage == best[i].passage;
			if (!seen)
				res->cites[res->ncites++] = (struct llm_cite){ n, best[i].s.p,
									       utf8_prefix(best[i].s.p, len, QUOTE_MAX) };
		}
	}
	res->text = rc ? NULL : buf_steal(&out);
	buf_free(&out);
	if (!res->text) {
		res->ncites = 0;
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	res->extractive = 1;
	return 0;
}

static int extractive_open(void **self, const struct llm_link_config *lc, struct stop *stop, struct err *e)
{
	(void)lc, (void)stop, (void)e;
	*self = NULL;
	return 0;
}

static void extractive_close(void *self)
{
	(void)self;
}

static int extractive_complete(void *self, const struct llm_request *req, struct llm_result *res, struct err *e)
{
	(void)self;
	if (!req->passages)
		return err_set(e, ERR_UNAVAILABLE, "no passages to answer from");
	int rc = llm_extractive_answer(req->question, req->passages, req->npassages, res, e);
	if (rc)
		return rc;
	snprintf(res->provider, sizeof(res->provider), "extractive");
	snprintf(res->model, sizeof(res->model), "sentence-overlap");
	if (req->stream && req->on_delta && *res->text) {
		size_t n = strlen(res->text);
		res->delivered += (int)n;
		req->on_delta(req->ctx, res->text, n);
	}
	return 0;
}

const struct llm_ops llm_extractive_ops = {
	.api = "extractive",
	.remote = 0,
	.open = extractive_open,
	.close = extractive_close,
	.complete = extractive_complete,
};
