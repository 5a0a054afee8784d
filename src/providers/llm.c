#include "llm.h"

#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../core/mem.h"

#define MAX_LINKS (CONFIG_LLM_MAX + 1)

struct link {
	const struct llm_ops *ops;
	void *self;
	char name[64], model[128];
};

struct llm_chain {
	int n, remote;
	struct link l[MAX_LINKS];
};

static const struct llm_ops *const all_ops[] = { &llm_openai_ops, &llm_anthropic_ops, &llm_extractive_ops };

const struct llm_ops *llm_ops_find(const char *api)
{
	for (size_t i = 0; i < ARRAY_LEN(all_ops); i++)
		if (api && !strcmp(all_ops[i]->api, api))
			return all_ops[i];
	return NULL;
}

static int add_link(struct llm_chain *ch, const struct llm_ops *ops, const struct llm_link_config *lc,
		    struct stop *stop, struct err *e)
{
	struct link *l = &ch->l[ch->n];
	int rc = ops->open(&l->self, lc, stop, e);
	if (rc)
		return rc;
	l->ops = ops;
	snprintf(l->name, sizeof(l->name), "%s", lc->name);
	snprintf(l->model, sizeof(l->model), "%s", lc->model);
	ch->n++;
	ch->remote += ops->remote;
	return 0;
}

int llm_chain_new(struct llm_chain **out, const struct config *cfg, struct stop *stop, struct err *e)
{
	*out = NULL;
	struct llm_chain *ch = xcalloc(1, sizeof(*ch));
	if (!ch)
		return err_set(e, ERR_INTERNAL, "out of memory");
	int rc = 0;
	for (int i = 0; i < cfg->nllm && !rc; i++) {
		const struct config_llm *p = &cfg->llm[i];
		const struct llm_ops *ops = llm_ops_find(p->api);
		if (!ops) {
			rc = err_set(e, ERR_INVALID, "BOOKD_LLM_%s_API: no language-model API \"%s\"", p->name, p->api);
			break;
		}
		if (!ops->remote)
			continue; /* the extractive link is always the last */
		struct llm_link_config lc = { .name = p->name,
					      .model = p->model,
					      .url = p->url,
					      .key = p->key,
					      .timeout_s = p->timeout,
					      .tries = cfg->llm_tries,
					      .breaker_failures = cfg->llm_breaker_failures,
					      .breaker_seconds = cfg->llm_breaker_seconds };
		rc = add_link(ch, ops, &lc, stop, e);
	}
	if (!rc) {
		struct llm_link_config lc = { .name = "extractive", .model = "sentence-overlap" };
		rc = add_link(ch, &llm_extractive_ops, &lc, stop, e);
	}
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
	for (int i = 0; i < ch->n; i++)
		ch->l[i].ops->close(ch->l[i].self);
	xfree(ch);
}

int llm_chain_size(const struct llm_chain *ch)
{
	return ch ? ch->remote : 0;
}

void llm_chain_describe(const struct llm_chain *ch, char *out, size_t cap)
{
	size_t at = 0;
	out[0] = '\0';
	for (int i = 0; ch && i < ch->n && at < cap; i++) {
		const struct link *l = &ch->l[i];
		if (!l->ops->remote)
			continue;
		int open = l->ops->circuit_open && l->ops->circuit_open(l->self);
		int k = snprintf(out + at, cap - at, "%s%s:%s%s", at ? "," : "", l->name, l->model,
				 open ? " (circuit open)" : "");
		at += k > 0 ? (size_t)k : 0;
	}
}

int llm_complete(struct llm_chain *ch, const struct llm_request *req, struct llm_result *res, struct err *e)
{
	memset(res, 0, sizeof(*res));
	err_clear(e);
	if (!ch)
		return err_set(e, ERR_UNAVAILABLE, "no language model is configured");
	struct err last = { 0 };
	for (int i = 0; i < ch->n; i++) {
		struct link *l = &ch->l[i];
		struct err le = { 0 };
		if (!l->ops->remote && ch->remote && last.code)
			log_warn("every language model failed (%s); answering extractively", last.msg);
		int rc = l->ops->complete(l->self, req, res, &le);
		if (rc == 0) {
			if (!res->provider[0])
				snprintf(res->provider, sizeof(res->provider), "%s", l->name);
			if (!res->model[0])
				snprintf(res->model, sizeof(res->model), "%s", l->model);
			if (!res->completion_tokens && !res->extractive && res->text)
				res->completion_tokens = (int)((strlen(res->text) + 3) / 4);
			return 0;
		}
		if (res->cancelled || res->delivered) {
			/* Cancelled: nobody waits. Delivered: the reader saw the start of
			 * this answer, another link's would not follow it. */
			if (res->delivered)
				snprintf(res->provider, sizeof(res->provider), "%s", l->name);
			*e = le;
			return le.code ? le.code : ERR_UNAVAILABLE;
		}
		if (l->ops->remote) {
			last = le;
			log_warn("LLM provider %s failed: %s; trying the next", l->name, le.msg);
		} else if (!last.code) {
			last = le;
		}
	}
	*e = last;
	return last.code ? last.code : err_set(e, ERR_UNAVAILABLE, "no language model answered");
}

void llm_result_free(struct llm_result *r)
{
	xfree(r->text);
	r->text = NULL;
}
