/*
 * Section transformations: see transform.h for what is promised. Inside:
 *
 * - A request loads the chapter, cuts it (sections.c) and looks every
 *   section up on one connection (human translation, then the cache), which
 *   it gives back before any model call: nothing holds a connection while a
 *   model thinks.
 * - A missing section goes through the flight table: the first request for a
 *   key (hash, target, model, version) becomes its leader and asks the model;
 *   later ones find the key there, wait on the table's condition variable
 *   (waking every 100 ms to honour their deadline, their cancel callback and
 *   shutdown) and copy the leader's outcome. The flight is unlinked as soon
 *   as it is done (the cache answers from then on) and freed by its last
 *   reader.
 * - The leader protects the section (md_protect), asks the model, restores
 *   and validates (md_restore); an invalid answer is asked for again up to
 *   TRANSFORM_TRIES times, then the section falls back to its source. Only a
 *   validated answer is inserted (ON CONFLICT DO NOTHING: another node may
 *   have been first).
 * - Heading lines without an explicit `{#id}` get their anchor written in
 *   before protection, so a translated heading keeps the source's anchor.
 */
#include "transform.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/buf.h"
#include "../core/cache.h"
#include "../core/hash.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../providers/llm.h"
#include "../store/store_transform.h"
#include "books.h"
#include "mdprotect.h"
#include "search.h"
#include "sections.h"

#define GLOSSARY_MAX_TERMS 500
#define TERM_MAX 200
#define TARGET_MAX 160
#define SECTION_MAX (256 * 1024)

struct flight {
	struct flight *next;
	char *key;
	int refs, done;
	int rc; /* the leader's outcome */
	char msg[256];
	char *output; /* xmalloc'ed */
	size_t n;
	int fallback;
	char reason[256];
};

struct transform {
	db *db;
	struct llm_chain *llm;
	int has_model;
	char model[160];
	int deadline_s;
	struct stop *stop;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct flight *flights;
	long calls;
	struct cache *rendered;
	atomic_uint_fast32_t generation; /* bumped after each editor's change is committed */
};

int transform_new(struct transform **out, db *d, const struct transform_config *cfg, struct err *e)
{
	struct transform *t = xcalloc(1, sizeof(*t));
	if (!t)
		return err_set(e, ERR_INTERNAL, "out of memory");
	t->db = d;
	t->llm = cfg->llm;
	t->has_model = cfg->llm && llm_chain_size(cfg->llm) > 0;
	t->deadline_s = cfg->deadline_s > 0 ? cfg->deadline_s : 60;
	t->stop = cfg->stop;
	if (t->has_model) {
		char desc[512];
		llm_chain_describe(cfg->llm, desc, sizeof(desc));
		desc[strcspn(desc, " ,")] = '\0';
		snprintf(t->model, sizeof(t->model), "%.150s", desc);
	} else {
		snprintf(t->model, sizeof(t->model), "none");
	}
	t->rendered = cache_new(cfg->rendered_bytes);
	if (!t->rendered) {
		xfree(t);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	*out = t;
	return 0;
}

void transform_free(struct transform *t)
{
	if (!t)
		return;
	cache_free(t->rendered);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	xfree(t);
}

uint64_t transform_rendered_stamp(struct transform *t)
{
	uint64_t gen = atomic_load(&t->generation);
	return gen << 32 | (uint64_t)(time_mono_us() / ((int64_t)TRANSFORM_RENDERED_TTL_S * 1000000));
}

static void rendered_key(char *out, size_t n, const char *chapter_id, const char *target, uint64_t stamp)
{
	snprintf(out, n, "%s\x1f%s\x1f%llx", chapter_id, target, (unsigned long long)stamp);
}

struct rcbuf *transform_rendered_get(struct transform *t, const char *chapter_id, int64_t rev, const char *target)
{
	char key[256];
	rendered_key(key, sizeof(key), chapter_id, target, transform_rendered_stamp(t));
	return cache_get(t->rendered, key, rev);
}

void transform_rendered_put(struct transform *t, const char *chapter_id, int64_t rev, const char *target,
			    uint64_t stamp, struct rcbuf *body)
{
	char key[256];
	rendered_key(key, sizeof(key), chapter_id, target, stamp);
	cache_put(t->rendered, key, rev, body);
}

static void edited(struct transform *t)
{
	atomic_fetch_add(&t->generation, 1);
}

int transform_has_model(const struct transform *t)
{
	return t && t->has_model;
}

long transform_calls(const struct transform *t)
{
	long n;
	pthread_mutex_lock((pthread_mutex_t *)&t->lock);
	n = t->calls;
	pthread_mutex_unlock((pthread_mutex_t *)&t->lock);
	return n;
}

/* ---- small things ------------------------------------------------------------ */

const char *transform_direction(const char *lang)
{
	static const char *const rtl[] = { "ar", "ur", "fa", "he", "iw", "ps", "sd", "ug", "yi", "dv", "ckb",
					   "syr", "arc", "nqo", "ks", "ku-arab", "pa-arab", "prs", "azb", NULL };
	static const char *const scripts[] = { "arab", "hebr", "thaa", "syrc", "nkoo", "adlm", "rohg", NULL };
	const char *rc = "ltr";
	if (!lang)
		return rc;
	size_t pl = strcspn(lang, "-_");
	for (int i = 0; rtl[i]; i++) {
		size_t k = strlen(rtl[i]);
		if ((k == pl && !strncasecmp(lang, rtl[i], k)) || !strcasecmp(lang, rtl[i]))
			rc = "rtl";
	}
	/* A script subtag decides when there is one (ku-Arab, az-Arab; ur-Latn is ltr). */
	const char *p = lang + pl;
	while (*p) {
		p++;
		size_t k = strcspn(p, "-_");
		if (k == 4) {
			rc = "ltr";
			for (int i = 0; scripts[i]; i++)
				if (!strncasecmp(p, scripts[i], 4))
					rc = "rtl";
		}
		p += k;
	}
	return rc;
}

static const char *const profile_fields[] = { "experience_level", "software_background", "hardware_background",
					      "learning_goals",	  "example_style",	 "explanation_depth",
					      "content_complexity", "programming_languages", "preferred_topics",
					      "gpu_access",	  "robotics_kit_experience", NULL };

int transform_profile_hash(const json_t *profile, char out[65])
{
	json_t *o = json_object();
	int rc = -1;
	for (int i = 0; o && profile_fields[i]; i++) {
		json_t *v = json_object_get(profile, profile_fields[i]);
		if (v && !json_is_null(v))
			json_object_set(o, profile_fields[i], v);
	}
	char *s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (s) {
		hash_sha256_hex(s, strlen(s), out);
		rc = 0;
	}
	free(s);
	json_decref(o);
	return rc;
}

/* ---- glossary ----------------------------------------------------------------- */

struct glossary {
	struct md_glossary_term *terms;
	int n;
	char hash[65]; /* "" when empty */
};

/* The terms that apply to the target: for a language, the terms without a
 * language and those of that language (their translations); for a profile,
 * every term kept as it is. */
static int glossary_load(struct transform *t, db_conn *c, struct arena *a, const char *book_id,
			 const struct transform_target *tg, struct glossary *g, struct err *e)
{
	char *text;
	int64_t at;
	memset(g, 0, sizeof(*g));
	int rc = book_id ? store_glossary_get(c, a, book_id, &text, &at, e) : 0;
	if (rc || !book_id)
		return rc;
	json_t *arr = json_loads(text, 0, NULL);
	size_t n = json_array_size(arr);
	g->terms = n ? arena_alloc(a, n * sizeof(*g->terms)) : NULL;
	struct buf key;
	buf_init(&key, 1 << 20);
	for (size_t i = 0; g->terms && i < n; i++) {
		json_t *o = json_array_get(arr, i);
		const char *term = json_string_value(json_object_get(o, "term"));
		const char *lang = json_string_value(json_object_get(o, "lang"));
		const char *tr = json_string_value(json_object_get(o, "translation"));
		if (!term)
			continue;
		if (tg->kind == TRANSFORM_TRANSLATE) {
			if (lang && strcasecmp(lang, tg->lang))
				continue;
		} else {
			tr = NULL;
		}
		g->terms[g->n].term = arena_strdup(a, term);
		g->terms[g->n].translation = tr ? arena_strdup(a, tr) : NULL;
		g->n++;
		if (buf_printf(&key, "%s\x1f%s\x1e", term, tr ? tr : ""))
			rc = err_set(e, ERR_INTERNAL, "out of memory");
	}
	if (rc == 0 && g->n && key.p)
		hash_sha256_hex(key.p, key.n, g->hash);
	buf_free(&key);
	json_decref(arr);
	(void)t;
	return rc;
}

/* The cache's target: "ur", "profile:<hex>", + "+g<12 hex>" with a glossary. */
static int target_key(const struct transform_target *tg, const struct glossary *g, char out[TARGET_MAX],
		      struct err *e)
{
	char ph[65];
	int k;
	if (tg->kind == TRANSFORM_TRANSLATE) {
		k = snprintf(out, TARGET_MAX, "%s", tg->lang);
	} else {
		if (transform_profile_hash(tg->profile, ph))
			return err_set(e, ERR_INTERNAL, "out of memory");
		k = snprintf(out, TARGET_MAX, "profile:%s", ph);
	}
	if (g->hash[0] && k > 0 && k < TARGET_MAX)
		k += snprintf(out + k, TARGET_MAX - (size_t)k, "+g%.12s", g->hash);
	return k > 0 && k < TARGET_MAX ? 0 : err_set(e, ERR_INVALID, "target too long");
}

/* ---- the model call ---------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static char *system_prompt(struct arena *a, const struct transform_target *tg)
{
	if (tg->kind == TRANSFORM_TRANSLATE)
		return arena_printf(a,
				    "You translate one section of a Markdown book chapter into the language "
				    "with BCP 47 tag \"%s\". Translate the prose, headings included; keep the "
				    "Markdown structure exactly (heading marks and levels, lists, tables, "
				    "emphasis, blank lines). %s Answer with the translated section only.",
				    tg->lang, md_protect_instructions());
	const json_t *p = tg->profile;
	const char *lv = jstr(p, "experience_level"), *sw = jstr(p, "software_background"),
		   *hw = jstr(p, "hardware_background"), *goals = jstr(p, "learning_goals"),
		   *ex = jstr(p, "example_style"), *depth = jstr(p, "explanation_depth");
	return arena_printf(a,
			    "You adapt one section of a Markdown book chapter for one reader. Reader: "
			    "experience level %s; software background: %s; hardware background: %s; "
			    "learning goals: %s; preferred examples: %s; explanation depth: %s. Keep every "
			    "fact and the Markdown structure (the same headings, in order, at the same levels); "
			    "adjust explanations, analogies and examples to the reader. %s Answer with the "
			    "adapted section only.",
			    lv ? lv : "intermediate", sw ? sw : "not given", hw ? hw : "not given",
			    goals ? goals : "not given", ex ? ex : "mixed", depth ? depth : "standard",
			    md_protect_instructions());
}

/* The section with the anchor written into its heading line when the line
 * has no explicit one. */
static char *with_anchor(struct arena *a, const char *src, size_t n, const char *anchor, int level, size_t *outn)
{
	const char *nl = memchr(src, '\n', n);
	size_t ln = nl ? (size_t)(nl - src) : n;
	size_t end = ln;
	while (end && (src[end - 1] == ' ' || src[end - 1] == '\r'))
		end--;
	char *out = NULL;
	int has_id = end && src[end - 1] == '}' && memmem(src, end, "{#", 2);
	if (level == 0 || has_id || !anchor[0] || src[0] == '\n') {
		*outn = n;
		return arena_strndup(a, src, n);
	}
	/* The heading line may not be first: the intro's white space went with it. */
	out = arena_printf(a, "%.*s {#%s}%.*s", (int)end, src, anchor, (int)(n - end), src + end);
	*outn = out ? strlen(out) : 0;
	return out;
}

struct outcome {
	int rc;
	char msg[256];
	char *text; /* in the caller's arena */
	size_t n;
	int fallback, cached;
	char reason[256];
};

struct job_in {
	const struct transform_target *tg;
	const struct glossary *g;
	const char *anchor;
	int level;
	const char *src;
	size_t n;
	int (*cancelled)(void *);
	void *ctx;
	/* a chapter's section (NULL for arbitrary text): a translation of it is indexed for search */
	const char *book_id, *chapter_id, *chapter_title;
	int position;
};

/* Asks the model (TRANSFORM_TRIES times at most); *o in `a`. */
static void call_model(struct transform *t, struct arena *a, const struct job_in *in, struct outcome *o)
{
	struct err e = { 0 };
	size_t pn;
	char *prepared = with_anchor(a, in->src, in->n, in->anchor, in->level, &pn);
	struct md_protected prot;
	char *sys = system_prompt(a, in->tg);
	if (!prepared || !sys) {
		o->rc = err_set(&e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (md_protect(a, prepared, pn, in->g->terms, in->g->n, &prot, &e)) {
		o->fallback = 1;
		snprintf(o->reason, sizeof(o->reason), "cannot protect the section: %.150s", e.msg);
		goto out;
	}
	for (int attempt = 0; attempt < TRANSFORM_TRIES; attempt++) {
		struct llm_message m = { "user", prot.text };
		size_t max = pn / 2 + 512;
		struct llm_request rq = { .system = sys,
					  .messages = &m,
					  .nmessages = 1,
					  .max_tokens = (int)(max > 8192 ? 8192 : max),
					  .temperature = 0.2,
					  .cancelled = in->cancelled,
					  .ctx = in->ctx,
					  .deadline_ms = time_now_ms() + (int64_t)t->deadline_s * 1000 };
		struct llm_result res;
		pthread_mutex_lock(&t->lock);
		t->calls++;
		pthread_mutex_unlock(&t->lock);
		err_clear(&e);
		int rc = llm_complete(t->llm, &rq, &res, &e);
		if (rc == 0 && res.extractive)
			rc = err_set(&e, ERR_UNAVAILABLE, "no language model answered");
		if (rc) {
			llm_result_free(&res);
			o->rc = err_set(&e, rc == ERR_INTERNAL ? ERR_INTERNAL : ERR_UNAVAILABLE,
					"the language model is not available: %s", e.msg);
			break;
		}
		char *restored;
		struct err ve = { 0 };
		rc = md_restore(a, &prot, res.text, strlen(res.text), &restored, &ve);
		llm_result_free(&res);
		if (rc == 0) {
			o->text = restored;
			o->n = strlen(restored);
			o->fallback = 0;
			break;
		}
		o->fallback = 1;
		snprintf(o->reason, sizeof(o->reason), "the model's output broke the structure: %.150s", ve.msg);
		log_warn("section %s: %s (attempt %d of %d)", in->anchor, o->reason, attempt + 1, TRANSFORM_TRIES);
	}
out:
	if (o->rc)
		snprintf(o->msg, sizeof(o->msg), "%s", e.msg);
}

/* ---- single flight ------------------------------------------------------------- */

static void flight_unref(struct flight *f)
{
	if (--f->refs > 0)
		return;
	xfree(f->key);
	xfree(f->output);
	xfree(f);
}

static void copy_outcome(struct arena *a, const struct flight *f, struct outcome *o)
{
	o->rc = f->rc;
	snprintf(o->msg, sizeof(o->msg), "%s", f->msg);
	o->fallback = f->fallback;
	snprintf(o->reason, sizeof(o->reason), "%s", f->reason);
	if (f->output) {
		o->text = arena_strndup(a, f->output, f->n);
		o->n = f->n;
		if (!o->text)
			o->rc = ERR_INTERNAL;
	}
}

static int waiter_cancelled(struct transform *t, const struct job_in *in)
{
	return stop_fired(t->stop) || (in->cancelled && in->cancelled(in->ctx));
}

/* One missing section: lead its flight or follow it. */
static void compute(struct transform *t, struct arena *a, const char *hash, const char *target,
		    const struct job_in *in, struct outcome *o)
{
	char *key = arena_printf(a, "%s|%s|%s|%d", hash, target, t->model, TRANSFORM_PROMPT_VERSION);
	struct flight *f = NULL;
	if (!key) {
		o->rc = ERR_INTERNAL;
		return;
	}
	pthread_mutex_lock(&t->lock);
	for (f = t->flights; f && strcmp(f->key, key); f = f->next)
		;
	if (f) {
		f->refs++;
		int64_t deadline = time_now_ms() + (int64_t)t->deadline_s * 1000 * TRANSFORM_TRIES;
		while (!f->done && !waiter_cancelled(t, in) && time_now_ms() < deadline) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 100 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&t->cond, &t->lock, &ts);
		}
		if (f->done) {
			copy_outcome(a, f, o);
		} else {
			o->rc = ERR_UNAVAILABLE;
			snprintf(o->msg, sizeof(o->msg), "gave up waiting for the section being computed");
		}
		flight_unref(f);
		pthread_mutex_unlock(&t->lock);
		return;
	}
	f = xcalloc(1, sizeof(*f));
	char *k = f ? xstrdup(key) : NULL;
	if (!k) {
		xfree(f);
		pthread_mutex_unlock(&t->lock);
		o->rc = ERR_INTERNAL;
		return;
	}
	f->key = k;
	f->refs = 1;
	f->next = t->flights;
	t->flights = f;
	pthread_mutex_unlock(&t->lock);

	call_model(t, a, in, o);
	if (o->rc == 0 && !o->fallback) {
		struct err e = { 0 };
		db_conn *c;
		struct section_row r = { .source_hash = hash,
					 .target = target,
					 .model = t->model,
					 .prompt_version = TRANSFORM_PROMPT_VERSION,
					 .source_text = arena_strndup(a, in->src, in->n),
					 .output = o->text,
					 .origin = "machine",
					 .answered_by = t->model,
					 .created_at = time_now_ms() };
		if (db_acquire(t->db, &c, &e) == 0) {
			if (store_section_put(c, &r, &e))
				log_warn("section %s not cached: %s", in->anchor, e.msg);
			else if (in->tg->kind == TRANSFORM_TRANSLATE && in->chapter_id &&
				 search_index_translation(c, in->book_id, in->chapter_id, in->chapter_title, in->tg->lang,
							  in->position, in->anchor, o->text, o->n, &e))
				log_warn("section %s: translation not indexed: %s", in->anchor, e.msg);
			db_release(c);
		} else {
			log_warn("section %s not cached: %s", in->anchor, e.msg);
		}
	}

	pthread_mutex_lock(&t->lock);
	f->rc = o->rc;
	snprintf(f->msg, sizeof(f->msg), "%s", o->msg);
	f->fallback = o->fallback;
	snprintf(f->reason, sizeof(f->reason), "%s", o->reason);
	if (o->text) {
		f->output = xmalloc(o->n + 1);
		if (f->output) {
			memcpy(f->output, o->text, o->n);
			f->output[o->n] = '\0';
			f->n = o->n;
		} else {
			f->rc = ERR_INTERNAL;
		}
	}
	f->done = 1;
	for (struct flight **pp = &t->flights; *pp; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	pthread_cond_broadcast(&t->cond);
	flight_unref(f);
	pthread_mutex_unlock(&t->lock);
}

/* ---- chapters ------------------------------------------------------------------ */

static int emit(const struct transform_request *rq, int i, const struct transform_section *s)
{
	return rq->on_section ? rq->on_section(rq->ctx, i, s) : 0;
}

static const struct human_section *human_for(const struct human_section *h, int n, const char *anchor)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(h[i].anchor, anchor))
			return &h[i];
	return NULL;
}

static long words_of(const char *s, size_t n)
{
	long w = 0;
	int in = 0;
	for (size_t i = 0; i < n; i++) {
		int sp = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r';
		if (!sp && !in)
			w++;
		in = !sp;
	}
	return w;
}

static int json_profile_audience(const json_t *p, struct audience *who)
{
	who->level = jstr(p, "experience_level");
	who->software = jstr(p, "software_background");
	who->hardware = jstr(p, "hardware_background");
	return 0;
}

int transform_chapter(struct transform *t, struct arena *a, const struct transform_request *rq,
		      struct transform_result *out, struct err *e)
{
	const struct transform_target *tg = &rq->target;
	struct chapter ch;
	struct md_part *parts = NULL;
	struct human_section *human = NULL;
	int nparts = 0, nhuman = 0, rc;
	db_conn *c = NULL;
	struct glossary g;
	char target[TARGET_MAX];
	char **hashes = NULL;
	memset(out, 0, sizeof(*out));
	if ((rc = chapters_get(t->db, a, rq->book_id, rq->chapter, &ch, e)))
		goto out;
	snprintf(out->chapter_id, sizeof(out->chapter_id), "%s", ch.id);
	out->number = ch.number;
	out->title = ch.title;
	out->lang = tg->kind == TRANSFORM_TRANSLATE ? tg->lang : NULL;
	out->direction = tg->kind == TRANSFORM_TRANSLATE ? transform_direction(tg->lang) : "ltr";
	const char *md = ch.content_markdown ? ch.content_markdown : "";
	size_t mdn = ch.content_markdown ? ch.content_len : 0;
	int use_model = t->has_model && !(rq->flags & TRANSFORM_CACHED_ONLY);
	if (tg->kind == TRANSFORM_PERSONALIZE) {
		struct audience who;
		char *sel;
		size_t seln;
		int blocks;
		json_profile_audience(tg->profile, &who);
		if ((rc = audience_select(a, md, mdn, &who, &sel, &seln, &blocks, e)))
			goto out;
		md = sel;
		mdn = seln;
	}
	if ((rc = sections_split(a, md, mdn, &parts, &nparts, e)))
		goto out;
	out->sections = arena_alloc(a, sizeof(*out->sections) * (size_t)(nparts + 1));
	hashes = arena_alloc(a, sizeof(*hashes) * (size_t)(nparts + 1));
	if (!out->sections || !hashes) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	out->nsections = nparts;
	if ((rc = db_acquire(t->db, &c, e)))
		goto out;
	if (tg->kind == TRANSFORM_TRANSLATE && !(rq->flags & TRANSFORM_NO_HUMAN) &&
	    (rc = store_human_list(c, a, ch.id, tg->lang, &human, &nhuman, e)))
		goto out;
	if (tg->kind == TRANSFORM_TRANSLATE && !t->has_model && nhuman == 0) {
		out->unavailable = 1;
		rc = err_set(e, ERR_NOT_FOUND, "no translation into %s: no human translation is stored and no "
					       "language model is configured", tg->lang);
		goto out;
	}
	if ((rc = glossary_load(t, c, a, rq->book_id, tg, &g, e)) || (rc = target_key(tg, &g, target, e)))
		goto out;
	out->method = tg->kind == TRANSFORM_PERSONALIZE ? (t->has_model ? "llm" : "audience_blocks")
							 : (t->has_model ? "llm" : "human");
	/* What is ready now: human, cached, or (no model) as it is. */
	int pending = 0;
	for (int i = 0; i < nparts; i++) {
		struct transform_section *s = &out->sections[i];
		struct md_part *p = &parts[i];
		*s = (struct transform_section){ .anchor = p->anchor, .heading = p->heading, .level = p->level,
						 .source = p->text, .source_len = p->len };
		hashes[i] = arena_alloc(a, 65);
		if (!hashes[i]) {
			rc = err_set(e, ERR_INTERNAL, "out of memory");
			goto out;
		}
		hash_sha256_hex(p->text, p->len, hashes[i]);
		const struct human_section *h = human_for(human, nhuman, p->anchor);
		if (h) {
			*s = (struct transform_section){ .anchor = p->anchor, .heading = p->heading, .level = p->level,
							 .source = p->text, .source_len = p->len, .text = h->content,
							 .text_len = h->content_len, .origin = "human", .cached = 1,
							 .stale = strcmp(h->source_hash, hashes[i]) != 0 };
			continue;
		}
		if (tg->kind == TRANSFORM_PERSONALIZE && !t->has_model) {
			s->text = p->text;
			s->text_len = p->len;
			s->origin = "audience_blocks";
			s->cached = 1;
			continue;
		}
		if (words_of(p->text, p->len) == 0 || p->len > SECTION_MAX) {
			/* nothing to translate (white space), or too long to ask for */
			s->text = p->text;
			s->text_len = p->len;
			s->origin = "source";
			s->cached = 1;
			if (p->len > SECTION_MAX) {
				s->fallback = 1;
				s->reason = "the section is too long to transform";
			}
			continue;
		}
		char *txt;
		size_t tn;
		int g_rc = store_section_get(c, a, hashes[i], target, t->model, TRANSFORM_PROMPT_VERSION, &txt, &tn, e);
		if (g_rc == 0) {
			s->text = txt;
			s->text_len = tn;
			s->origin = "machine";
			s->cached = 1;
		} else if (g_rc != ERR_NOT_FOUND) {
			rc = g_rc;
			goto out;
		} else {
			pending++;
		}
	}
	err_clear(e);
	db_release(c);
	c = NULL;
	for (int i = 0; i < nparts; i++)
		if (out->sections[i].text && emit(rq, i, &out->sections[i])) {
			rc = err_set(e, ERR_UNAVAILABLE, "the reader went away");
			goto out;
		}
	for (int i = 0; i < nparts && pending; i++) {
		struct transform_section *s = &out->sections[i];
		if (s->text)
			continue;
		if (!use_model || (rq->anchor && strcmp(s->anchor, rq->anchor))) {
			s->text = s->source;
			s->text_len = s->source_len;
			s->origin = "source";
			s->fallback = 1;
			s->reason = use_model ? "not asked for" : "not translated yet";
		} else {
			struct outcome o = { 0 };
			struct job_in in = { tg,	    &g,	   s->anchor, s->level, s->source, s->source_len, rq->cancelled,
					     rq->ctx, ch.book_id, ch.id, ch.title,  i };
			compute(t, a, hashes[i], target, &in, &o);
			if (o.rc) {
				rc = err_set(e, o.rc == ERR_INTERNAL ? ERR_INTERNAL : ERR_UNAVAILABLE, "%s",
					     o.msg[0] ? o.msg : "the language model is not available");
				goto out;
			}
			out->misses++;
			if (o.fallback) {
				s->text = s->source;
				s->text_len = s->source_len;
				s->origin = "source";
				s->fallback = 1;
				s->reason = arena_strdup(a, o.reason);
			} else {
				s->text = o.text;
				s->text_len = o.n;
				s->origin = "machine";
			}
		}
		if (emit(rq, i, s)) {
			rc = err_set(e, ERR_UNAVAILABLE, "the reader went away");
			goto out;
		}
	}
	struct buf all;
	buf_init(&all, (size_t)1 << 30);
	for (int i = 0; i < nparts && rc == 0; i++)
		if (buf_append(&all, out->sections[i].text, out->sections[i].text_len))
			rc = err_set(e, ERR_INTERNAL, "out of memory");
	if (rc == 0) {
		out->content = arena_strndup(a, all.p ? all.p : "", all.n);
		out->content_len = all.n;
		out->word_count = words_of(out->content ? out->content : "", all.n);
		if (!out->content)
			rc = err_set(e, ERR_INTERNAL, "out of memory");
	}
	buf_free(&all);
out:
	if (c)
		db_release(c);
	return rc;
}

/* ---- arbitrary text ---------------------------------------------------------------- */

static int is_space(char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* p[0..n) without the white space around it. */
static const char *trimmed(const char *p, size_t n, size_t *len)
{
	while (n && is_space(*p))
		p++, n--;
	while (n && is_space(p[n - 1]))
		n--;
	*len = n;
	return p;
}

static int same_text(const char *a, size_t an, const char *b, size_t bn)
{
	size_t x, y;
	a = trimmed(a, an, &x);
	b = trimmed(b, bn, &y);
	return x && x == y && !memcmp(a, b, x);
}

int transform_chapter_text(struct transform *t, struct arena *a, const struct transform_request *rq,
			   const char *text, size_t n, char **out, size_t *outn, int *fallback, int *cached,
			   int *matched, struct err *e)
{
	struct transform_request r = *rq;
	struct transform_result res;
	struct chapter ch;
	struct md_part *parts;
	int nparts, rc;
	*fallback = *cached = *matched = 0;
	r.anchor = NULL;
	if ((rc = chapters_get(t->db, a, rq->book_id, rq->chapter, &ch, e)))
		return rc;
	const char *md = ch.content_markdown ? ch.content_markdown : "";
	size_t mdn = ch.content_markdown ? ch.content_len : 0;
	if (!same_text(text, n, md, mdn)) {
		if ((rc = sections_split(a, md, mdn, &parts, &nparts, e)))
			return rc;
		for (int i = 0; i < nparts && !r.anchor; i++)
			if (same_text(text, n, parts[i].text, parts[i].len))
				r.anchor = parts[i].anchor;
		if (!r.anchor)
			return 0;
	}
	r.book_id = ch.book_id;
	r.chapter = ch.id;
	if ((rc = transform_chapter(t, a, &r, &res, e)))
		return rc;
	if (!r.anchor) {
		for (int i = 0; i < res.nsections; i++)
			*fallback |= res.sections[i].fallback;
		*out = res.content;
		*outn = res.content_len;
	} else {
		const struct transform_section *s = NULL;
		for (int i = 0; i < res.nsections && !s; i++)
			if (!strcmp(res.sections[i].anchor, r.anchor))
				s = &res.sections[i];
		if (!s)
			return 0; /* the section is gone from the reader's version */
		*fallback = s->fallback;
		*out = arena_strndup(a, s->text, s->text_len);
		*outn = s->text_len;
		if (!*out)
			return err_set(e, ERR_INTERNAL, "out of memory");
	}
	*cached = res.misses == 0;
	*matched = 1;
	return 0;
}

int transform_text(struct transform *t, struct arena *a, const char *book_id, const char *text, size_t n,
		   const struct transform_target *tg, char **out, size_t *outn, int *fallback, int *cached,
		   struct err *e)
{
	db_conn *c = NULL;
	struct glossary g;
	char target[TARGET_MAX], hash[65];
	int rc;
	*fallback = *cached = 0;
	hash_sha256_hex(text, n, hash);
	if ((rc = db_acquire(t->db, &c, e)))
		goto out;
	if ((rc = glossary_load(t, c, a, book_id, tg, &g, e)) || (rc = target_key(tg, &g, target, e)))
		goto out;
	rc = store_section_get(c, a, hash, target, t->model, TRANSFORM_PROMPT_VERSION, out, outn, e);
	if (rc != ERR_NOT_FOUND) {
		*cached = rc == 0;
		goto out;
	}
	err_clear(e);
	db_release(c);
	c = NULL;
	if (!t->has_model) {
		rc = err_set(e, ERR_UNAVAILABLE, "no language model is configured");
		goto out;
	}
	struct outcome o = { 0 };
	struct job_in in = { tg, &g, "text", 0, text, n, NULL, NULL, NULL, NULL, NULL, 0 };
	compute(t, a, hash, target, &in, &o);
	rc = o.rc ? err_set(e, o.rc, "%s", o.msg) : 0;
	if (rc == 0) {
		*fallback = o.fallback;
		*out = o.fallback ? arena_strndup(a, text, n) : o.text;
		*outn = o.fallback ? n : o.n;
	}
out:
	if (c)
		db_release(c);
	return rc;
}

/* ---- editors ------------------------------------------------------------------------- */

int transform_refresh(struct transform *t, struct arena *a, const char *book_id, const char *chapter,
		      const struct transform_target *tg, const char *anchor, struct transform_section *out,
		      struct err *e)
{
	struct chapter ch;
	struct md_part *parts;
	int nparts, rc, found = -1;
	db_conn *c = NULL;
	struct glossary g;
	char target[TARGET_MAX], hash[65];
	if ((rc = chapters_get(t->db, a, book_id, chapter, &ch, e)))
		goto out;
	if ((rc = sections_split(a, ch.content_markdown ? ch.content_markdown : "", ch.content_len, &parts, &nparts,
				 e)))
		goto out;
	for (int i = 0; i < nparts; i++)
		if (!strcmp(parts[i].anchor, anchor))
			found = i;
	if (found < 0) {
		rc = err_set(e, ERR_NOT_FOUND, "no section with anchor %s", anchor);
		goto out;
	}
	if (!t->has_model) {
		rc = err_set(e, ERR_UNAVAILABLE, "no language model is configured");
		goto out;
	}
	struct md_part *p = &parts[found];
	hash_sha256_hex(p->text, p->len, hash);
	if ((rc = db_acquire(t->db, &c, e)))
		goto out;
	struct human_section *human = NULL;
	int nhuman = 0;
	if ((rc = glossary_load(t, c, a, book_id, tg, &g, e)) || (rc = target_key(tg, &g, target, e)) ||
	    (rc = store_section_drop(c, hash, target, e)) ||
	    (tg->kind == TRANSFORM_TRANSLATE && (rc = store_human_list(c, a, ch.id, tg->lang, &human, &nhuman, e))))
		goto out;
	db_release(c);
	c = NULL;
	struct outcome o = { 0 };
	/* a human translation of the section stays the indexed one */
	int human_there = human_for(human, nhuman, p->anchor) != NULL;
	struct job_in in = { tg,	  &g,	 p->anchor, p->level, p->text, p->len, NULL, NULL, human_there ? NULL : ch.book_id,
			     human_there ? NULL : ch.id, ch.title, found };
	compute(t, a, hash, target, &in, &o);
	if (o.rc) {
		rc = err_set(e, o.rc, "%s", o.msg);
		goto out;
	}
	*out = (struct transform_section){ .anchor = p->anchor, .heading = p->heading, .level = p->level,
					   .source = p->text, .source_len = p->len,
					   .text = o.fallback ? p->text : o.text, .text_len = o.fallback ? p->len : o.n,
					   .origin = o.fallback ? "source" : "machine", .fallback = o.fallback,
					   .reason = o.fallback ? arena_strdup(a, o.reason) : NULL };
out:
	if (c)
		db_release(c);
	edited(t);
	return rc;
}

int transform_put_human(struct transform *t, struct arena *a, const char *book_id, const char *chapter,
			const char *lang, const char *whole, size_t whole_len,
			const struct transform_human_section *secs, int nsecs, const char *editor_id, int *stored,
			struct err *e)
{
	struct chapter ch;
	struct md_part *parts, *given = NULL;
	int nparts, ngiven = 0, rc;
	db_conn *c = NULL;
	*stored = 0;
	if ((rc = chapters_get(t->db, a, book_id, chapter, &ch, e)))
		goto out;
	if ((rc = sections_split(a, ch.content_markdown ? ch.content_markdown : "", ch.content_len, &parts, &nparts,
				 e)))
		goto out;
	if (whole) {
		if ((rc = sections_split(a, whole, whole_len, &given, &ngiven, e)))
			goto out;
		if (ngiven != nparts) {
			rc = err_set(e, ERR_INVALID, "the translation has %d sections, the chapter %d: give them by "
						     "anchor instead", ngiven, nparts);
			err_field(e, "content_markdown", "has %d sections where the chapter has %d", ngiven, nparts);
			goto out;
		}
	} else {
		for (int i = 0; i < nsecs; i++) {
			int found = 0;
			for (int k = 0; k < nparts; k++)
				found |= !strcmp(parts[k].anchor, secs[i].anchor);
			if (!found)
				err_field(e, "sections", "no section with anchor %.60s", secs[i].anchor);
		}
		if (e->ndetails) {
			rc = ERR_INVALID;
			goto out;
		}
	}
	if ((rc = db_acquire(t->db, &c, e)) || (rc = db_begin(c, e)))
		goto out;
	int64_t now = time_now_ms();
	for (int k = 0; k < nparts && rc == 0; k++) {
		const char *txt = NULL;
		size_t tn = 0;
		if (whole) {
			txt = given[k].text;
			tn = given[k].len;
		}
		for (int i = 0; !whole && i < nsecs; i++)
			if (!strcmp(parts[k].anchor, secs[i].anchor)) {
				txt = secs[i].text;
				tn = secs[i].len;
			}
		if (!txt)
			continue;
		char hash[65];
		hash_sha256_hex(parts[k].text, parts[k].len, hash);
		rc = store_human_put(c, ch.id, lang, parts[k].anchor, k, hash, txt, tn, editor_id, now, e);
		if (rc == 0)
			rc = search_index_translation(c, ch.book_id, ch.id, ch.title, lang, k, parts[k].anchor, txt, tn, e);
		if (rc == 0)
			(*stored)++;
	}
	if (rc == 0)
		rc = db_commit(c, e);
out:
	if (c) {
		db_rollback(c);
		db_release(c);
	}
	edited(t);
	return rc;
}

int transform_glossary_get(struct transform *t, const char *book_id, json_t **out, struct err *e)
{
	struct arena a;
	arena_init(&a, 4096);
	db_conn *c = NULL;
	char *text;
	int64_t at;
	struct book b;
	int rc = books_get(t->db, &a, book_id, &b, e);
	if (rc == 0)
		rc = db_acquire(t->db, &c, e);
	if (rc == 0)
		rc = store_glossary_get(c, &a, book_id, &text, &at, e);
	if (rc == 0) {
		json_t *terms = json_loads(text, 0, NULL);
		*out = json_pack("{s:s, s:o}", "book_id", book_id, "terms", terms ? terms : json_array());
		if (!*out)
			rc = err_set(e, ERR_INTERNAL, "out of memory");
	}
	if (c)
		db_release(c);
	arena_free(&a);
	return rc;
}

int transform_glossary_put(struct transform *t, const char *book_id, json_t *terms, json_t **out, struct err *e)
{
	struct arena a;
	arena_init(&a, 4096);
	db_conn *c = NULL;
	struct book b;
	json_t *clean = json_array();
	char *text = NULL;
	int rc = 0;
	if (!json_is_array(terms)) {
		err_field(e, "terms", "must be an array");
	} else if (json_array_size(terms) > GLOSSARY_MAX_TERMS) {
		err_field(e, "terms", "at most %d terms", GLOSSARY_MAX_TERMS);
	}
	for (size_t i = 0; !e->ndetails && i < json_array_size(terms); i++) {
		json_t *o = json_array_get(terms, i);
		json_t *term = json_object_get(o, "term"), *lang = json_object_get(o, "lang"),
		       *tr = json_object_get(o, "translation");
		char f[64];
		snprintf(f, sizeof(f), "terms[%zu]", i);
		if (!json_is_object(o) || !json_is_string(term) || json_string_length(term) == 0 ||
		    json_string_length(term) > TERM_MAX)
			err_field(e, f, "needs a term (1 to %d bytes)", TERM_MAX);
		else if (lang && !json_is_null(lang) &&
			 (!json_is_string(lang) || !books_language_valid(json_string_value(lang))))
			err_field(e, f, "lang must be a BCP 47 language tag");
		else if (tr && !json_is_null(tr) && (!json_is_string(tr) || json_string_length(tr) > TERM_MAX))
			err_field(e, f, "translation must be a string of at most %d bytes", TERM_MAX);
		else {
			json_t *c1 = json_pack("{s:O}", "term", term);
			if (c1 && json_is_string(lang))
				json_object_set(c1, "lang", lang);
			if (c1 && json_is_string(tr))
				json_object_set(c1, "translation", tr);
			json_array_append_new(clean, c1);
		}
	}
	if (e->ndetails) {
		rc = ERR_INVALID;
		goto out;
	}
	text = json_dumps(clean, JSON_COMPACT);
	if (!text) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	if ((rc = books_get(t->db, &a, book_id, &b, e)) || (rc = db_acquire(t->db, &c, e)) ||
	    (rc = store_glossary_put(c, book_id, text, time_now_ms(), e)))
		goto out;
	*out = json_pack("{s:s, s:O}", "book_id", book_id, "terms", clean);
	if (!*out)
		rc = err_set(e, ERR_INTERNAL, "out of memory");
out:
	if (c)
		db_release(c);
	edited(t);
	free(text);
	json_decref(clean);
	arena_free(&a);
	return rc;
}
