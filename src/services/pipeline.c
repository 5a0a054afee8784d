#include "pipeline.h"

#include <ctype.h>
#include <stdarg.h>
#include <strings.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/hash.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/timeutil.h"
#include "../providers/blob.h"
#include "../providers/llm.h"
#include "../providers/metadata.h"
#include "../providers/tts.h"
#include "../store/changes.h"
#include "books.h"
#include "markdown.h"
#include "outline.h"
#include "summary.h"

#define SUMMARY_WORDS_LLM_MIN 450
#define SUMMARY_WORDS_LLM_MAX 500
#define SUMMARY_WORDS_EXTRACTIVE 160
#define LLM_TRIES 3
#define LLM_DEADLINE_MS 180000
#define CHAPTER_TEXT_MAX (48 * 1024) /* what a summary prompt carries of a chapter */
#define MAX_OUTLINE 200

const char *const pipeline_steps[4] = { "metadata", "chapters", "summaries", "audio" };

static const char *kind_name(enum media_kind k)
{
	return k == MEDIA_SUMMARY ? "summary" : "chapter";
}

void pipeline_audio_key(char *out, size_t cap, const char *book_id, int64_t number, enum media_kind kind)
{
	snprintf(out, cap, "books/%s/audio/%" PRId64 "-%s.mp3", book_id, number, kind_name(kind));
}

void pipeline_timings_key(char *out, size_t cap, const char *book_id, int64_t number, enum media_kind kind)
{
	snprintf(out, cap, "books/%s/audio/%" PRId64 "-%s.timings.json", book_id, number, kind_name(kind));
}

int pipeline_voices_json(struct tts *t, json_t **out, struct err *e)
{
	const struct tts_voice *list;
	int n = 0;
	*out = NULL;
	if (!t || tts_voices(t, &list, &n))
		return err_set(e, ERR_UNAVAILABLE, "speech is not available");
	json_t *arr = json_array();
	for (int i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name", list[i].name, "language",
							 list[i].language, "label", list[i].label))) {
			json_decref(arr);
			arr = NULL;
		}
	if (!arr)
		return err_set(e, ERR_INTERNAL, "out of memory");
	*out = arr;
	return 0;
}

int pipeline_audio_open(struct blob_store *b, struct arena *a, const char *book_id, const struct chapter_media *m,
			enum media_kind kind, int presign_s, struct pipeline_audio *out, struct err *e)
{
	char key[200];
	struct blob_info bi;
	*out = (struct pipeline_audio){ .fd = -1 };
	if (!b)
		return err_set(e, ERR_UNAVAILABLE, "storage is not available");
	pipeline_audio_key(key, sizeof(key), book_id, m->number, kind);
	int rc = blob_open_fd(b, key, &out->fd, &bi, e);
	if (rc == 0) {
		out->size = bi.size;
		snprintf(out->etag, sizeof(out->etag), "%s", bi.etag);
		return 0;
	}
	if (rc == ERR_NOT_FOUND)
		return err_set(e, ERR_NOT_FOUND, "the audio file is missing from storage; process the book again");
	if (rc != ERR_UNSUPPORTED)
		return rc;
	err_clear(e);
	char url[4096];
	if ((rc = blob_presign_get(b, key, presign_s, url, sizeof(url), e)) != 0)
		return rc;
	if (!(out->url = arena_strdup(a, url)))
		return err_set(e, ERR_INTERNAL, "out of memory");
	return 0;
}

int pipeline_timings_read(struct blob_store *b, const char *book_id, const struct chapter_media *m,
			  enum media_kind kind, char **data, size_t *n, char etag[80], struct err *e)
{
	char key[200];
	struct blob_info bi;
	char *buf = NULL;
	*data = NULL;
	*n = 0;
	if (!b)
		return err_set(e, ERR_UNAVAILABLE, "storage is not available");
	pipeline_timings_key(key, sizeof(key), book_id, m->number, kind);
	int rc = blob_stat(b, key, &bi, e);
	if (rc == 0 && bi.size > PIPELINE_TIMINGS_MAX)
		rc = err_set(e, ERR_INTERNAL, "the timings file is too large");
	if (rc == 0 && !(buf = xmalloc((size_t)bi.size + 1)))
		rc = err_set(e, ERR_INTERNAL, "out of memory");
	if (rc == 0)
		rc = blob_read(b, key, 0, (size_t)bi.size, buf, n, e);
	if (rc) {
		xfree(buf);
		return rc;
	}
	buf[*n] = '\0';
	snprintf(etag, 80, "%s", bi.etag);
	*data = buf;
	return 0;
}

int pipeline_delete_files(struct blob_store *b, const char *book_id, struct err *e)
{
	char prefix[UUID_STR_LEN + 16];
	snprintf(prefix, sizeof(prefix), "books/%s/", book_id);
	return b ? blob_delete_prefix(b, prefix, e) : 0;
}

int pipeline_chapter_media(db *d, struct arena *a, const char *book_id, const char *ref, struct chapter_media *out,
			   struct err *e)
{
	db_conn *c;
	int rc = db_acquire(d, &c, e);
	if (rc)
		return rc;
	rc = store_media_get(c, a, book_id, ref, out, e);
	db_release(c);
	return rc;
}

/* ---- submitting ---------------------------------------------------------------
 * The check for a job in progress and the insert are one critical section in
 * this process; two nodes racing on one ISBN may queue two jobs, which is
 * harmless: the second finds every chapter done. */

static pthread_mutex_t submit_lock = PTHREAD_MUTEX_INITIALIZER;

int pipeline_submit(struct jobs *j, db *d, struct arena *a, const char *owner, const struct pipeline_request *r,
		    const char *idempotency_key, struct job *out, int *existing, struct err *e)
{
	char id[UUID_STR_LEN];
	db_conn *c = NULL;
	json_t *payload = NULL;
	*existing = 0;
	pthread_mutex_lock(&submit_lock);
	int rc = db_acquire(d, &c, e);
	if (rc)
		goto out;
	rc = store_media_active_job(c, r->isbn13, id, e);
	db_release(c);
	if (rc == 0) {
		rc = jobs_get(j, a, NULL, id, out, e);
		if (rc == 0 && !strcmp(out->status, "pending") + !strcmp(out->status, "processing")) {
			*existing = 1;
			goto out;
		}
	}
	if (rc && rc != ERR_NOT_FOUND)
		goto out;
	err_clear(e);
	payload = json_pack("{s:s, s:s, s:b}", "isbn13", r->isbn13, "isbn", r->isbn, "narrate", r->narrate);
	if (payload && r->voice)
		json_object_set_new(payload, "voice", json_string(r->voice));
	rc = payload ? jobs_submit(j, a, owner, "book.process", payload, idempotency_key, out, existing, e)
		     : err_set(e, ERR_INTERNAL, "out of memory");
out:
	pthread_mutex_unlock(&submit_lock);
	json_decref(payload);
	return rc;
}

/* ---- helpers ---------------------------------------------------------------- */

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void warn(struct job_ctx *jc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct job_ctx *jc, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_t *st = job_state(jc), *w = json_object_get(st, "warnings");
	if (!json_is_array(w)) {
		w = json_array();
		json_object_set_new(st, "warnings", w);
	}
	json_array_append_new(w, json_string(msg));
	log_warn("job %s: %s", job_id(jc), msg);
}

/* The result mirrors the state's public parts, so it travels with every
 * checkpoint and a resumed job still reports what earlier steps found. */
static void publish(struct job_ctx *jc)
{
	json_t *st = job_state(jc), *res = json_object();
	const char *keys[] = { "book_id",   "isbn",	   "metadata_source", "chapters_source", "chapters",
			       "summaries", "skipped",	   "audio",	      "syntheses",	 "voice",
			       "warnings" };
	for (size_t i = 0; res && i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(st, keys[i]);
		if (v)
			json_object_set(res, keys[i], v);
	}
	job_set_result(jc, res);
}

static int should_stop(void *ctx)
{
	return job_should_stop(ctx);
}

static int stopped(struct err *e)
{
	return err_set(e, ERR_UNAVAILABLE, "stopped; the job resumes at the next unfinished chapter");
}

static void touch_book(db *d, const char *book_id)
{
	changes_touch2(db_changes(d), "book:", book_id);
}

/* Plain text of a chapter's Markdown, from `a`. */
static int chapter_plain(db *d, struct arena *a, const char *book_id, const char *chapter_id, char **plain,
			 struct err *e)
{
	struct chapter ch;
	struct md_info info;
	int rc = chapters_get(d, a, book_id, chapter_id, &ch, e);
	if (rc == 0)
		rc = md_analyze(ch.content_markdown ? ch.content_markdown : "", ch.content_len, a, &info, e);
	*plain = rc == 0 && info.plain ? info.plain : "";
	return rc;
}

static int count_words(const char *s)
{
	int w = 0, in = 0;
	for (; s && *s; s++) {
		int sp = isspace((unsigned char)*s);
		w += !sp && !in;
		in = !sp;
	}
	return w;
}

static int llm_ask(struct job_ctx *jc, const char *system, const char *prompt, int max_tokens, char **text,
		   char *provider, size_t pcap, struct err *e)
{
	struct llm_message m = { "user", prompt };
	struct llm_request req = { .system = system,
				   .messages = &m,
				   .nmessages = 1,
				   .max_tokens = max_tokens,
				   .temperature = 0.3,
				   .ctx = jc,
				   .cancelled = should_stop,
				   .deadline_ms = time_now_ms() + LLM_DEADLINE_MS };
	struct llm_result res = { 0 };
	int rc = llm_complete(job_llm(jc), &req, &res, e);
	*text = NULL;
	if (rc == 0 && res.extractive)
		rc = err_set(e, ERR_UNAVAILABLE, "no language model answered");
	if (rc == 0) {
		*text = res.text;
		res.text = NULL;
		snprintf(provider, pcap, "%s%s%s", res.provider, res.model[0] ? ":" : "", res.model);
	}
	llm_result_free(&res);
	return rc;
}

/* ---- step 0: metadata --------------------------------------------------------- */

static int step_metadata(struct job_ctx *jc, struct arena *a, struct err *e)
{
	json_t *st = job_state(jc), *p = job_payload(jc);
	const char *isbn13 = jstr(p, "isbn13");
	db *d = job_db(jc);
	struct book b;
	struct book_metadata md;
	struct err me = { 0 };
	int created = 0;
	if (!isbn13)
		return err_set(e, ERR_INVALID, "the job has no ISBN");
	json_object_set_new(st, "isbn", json_string(isbn13));
	int rc = books_from_isbn(d, a, isbn13, NULL, &b, &created, e);
	if (rc && rc != ERR_NOT_FOUND)
		return rc;
	int have = rc == 0;
	err_clear(e);
	int mrc = job_metadata(jc) ? metadata_lookup(job_metadata(jc), a, isbn13, &md, &me)
				   : err_set(&me, ERR_UNAVAILABLE, "no metadata source is configured");
	if (mrc == 0) {
		/* Fills what the book lacks, never what an editor set. */
		if ((rc = books_from_isbn(d, a, isbn13, &md, &b, &created, e)))
			return rc;
		json_object_set_new(st, "metadata_source", json_string(md.source ? md.source : "unknown"));
	} else if (have) {
		warn(jc, "metadata for ISBN %s: %s; the book's own data is used", isbn13, me.msg);
	} else if (mrc == ERR_NOT_FOUND) {
		return err_set(e, ERR_INVALID,
			       "ISBN %s: no metadata source knows it and no imported book has it; import the book "
			       "with this ISBN first",
			       isbn13);
	} else {
		return err_set(e, mrc == ERR_INVALID ? ERR_INVALID : ERR_UNAVAILABLE,
			       "ISBN %s: no imported book has it and the metadata sources could not be asked: %s", isbn13,
			       me.msg);
	}
	json_object_set_new(st, "book_id", json_string(b.id));
	if (b.language)
		json_object_set_new(st, "language", json_string(b.language));
	return 0;
}

/* ---- step 1: chapters ----------------------------------------------------------- */

static int outline_with_llm(struct job_ctx *jc, struct arena *a, const struct book *b, int *created, struct err *e)
{
	char *prompt = arena_printf(a,
				    "List the chapters of the book \"%s\"%s%s, one per line, as \"<number>. <title>\", "
				    "and nothing else. If you do not know this book, answer UNKNOWN.",
				    b->title, b->author ? " by " : "", b->author ? b->author : "");
	char *text = NULL, provider[200], **titles = NULL;
	int n = 0;
	*created = 0;
	int rc = prompt ? llm_ask(jc, "You know the tables of contents of published books.", prompt, 1500, &text,
				  provider, sizeof(provider), e)
			: err_set(e, ERR_INTERNAL, "out of memory");
	if (rc == 0 && text)
		rc = outline_parse(text, strlen(text), MAX_OUTLINE, a, &titles, &n, e);
	for (int i = 0; rc == 0 && i < n; i++) {
		struct chapter_input in = { .title = titles[i], .content = "", .source_key = CHAPTER_SOURCE_LLM };
		struct chapter ch;
		if ((rc = chapters_create(job_db(jc), a, b->id, &in, &ch, e)) == 0)
			(*created)++;
	}
	if (rc == 0 && *created == 0)
		rc = err_set(e, ERR_INVALID,
			     "the language model does not know the chapters of \"%s\": import the book's text first",
			     b->title);
	free(text);
	return rc;
}

static int step_chapters(struct job_ctx *jc, struct arena *a, struct err *e)
{
	json_t *st = job_state(jc);
	const char *book_id = jstr(st, "book_id");
	db *d = job_db(jc);
	struct book b;
	struct chapter_media *items;
	int n = 0, created = 0;
	db_conn *c;
	if (!book_id)
		return err_set(e, ERR_INTERNAL, "no book recorded by the metadata step");
	int rc = books_get(d, a, book_id, &b, e);
	if (rc == 0 && (rc = db_acquire(d, &c, e)) == 0) {
		rc = store_media_all(c, a, book_id, &items, &n, e);
		db_release(c);
	}
	if (rc)
		return rc;
	const char *source = jstr(st, "chapters_source");
	if (n > 0 && !source) {
		source = "imported";
	} else if (n == 0 && job_llm(jc) && llm_chain_size(job_llm(jc)) > 0) {
		if ((rc = outline_with_llm(jc, a, &b, &created, e)))
			return rc;
		n = created;
		source = "llm";
	} else if (n == 0) {
		return err_set(e, ERR_INVALID,
			       "the book \"%s\" has no chapters and no language model is configured to outline it: "
			       "its text must be imported first (POST /api/v1/books/import)",
			       b.title);
	}
	json_object_set_new(st, "chapters_source", json_string(source));
	json_object_set_new(st, "chapters", json_integer(n));
	return 0;
}

/* ---- step 2: summaries ----------------------------------------------------------- */

static int answer_usable(const char *s)
{
	while (s && isspace((unsigned char)*s))
		s++;
	return s && *s && strncasecmp(s, "UNKNOWN", 7) != 0 && count_words(s) >= 40;
}

static int summarize_llm(struct job_ctx *jc, struct arena *a, const struct book *b, const struct chapter_media *m,
			 const char *plain, char **out, char *source, size_t scap, struct err *e)
{
	size_t tn = strlen(plain);
	char *prompt = arena_printf(
		a,
		"Summarise chapter %" PRId64 " (\"%s\") of the book \"%s\"%s%s in %d to %d words of plain prose, "
		"for listening: no headings, no lists, no Markdown. If you do not know this chapter, answer "
		"UNKNOWN.%s%.*s",
		m->number, m->title ? m->title : "", b->title, b->author ? " by " : "", b->author ? b->author : "",
		SUMMARY_WORDS_LLM_MIN, SUMMARY_WORDS_LLM_MAX, tn ? "\n\nThe chapter's text:\n\n" : "",
		(int)(tn > CHAPTER_TEXT_MAX ? CHAPTER_TEXT_MAX : tn), plain);
	int rc = prompt ? 0 : err_set(e, ERR_INTERNAL, "out of memory");
	*out = NULL;
	for (int i = 0; rc == 0 && i < LLM_TRIES && !*out; i++) {
		char *text = NULL, provider[200];
		rc = llm_ask(jc, "You write faithful, readable chapter summaries.", prompt, 1200, &text, provider,
			     sizeof(provider), e);
		if (rc == 0 && answer_usable(text)) {
			*out = arena_strdup(a, text);
			snprintf(source, scap, "llm:%s", provider);
		}
		free(text);
	}
	return rc;
}

static int step_summaries(struct job_ctx *jc, struct arena *a, struct err *e)
{
	json_t *st = job_state(jc);
	const char *book_id = jstr(st, "book_id");
	db *d = job_db(jc);
	struct book b;
	struct chapter_media *items;
	int n = 0, done = 0;
	db_conn *c;
	int use_llm = job_llm(jc) && llm_chain_size(job_llm(jc)) > 0;
	int rc = books_get(d, a, book_id ? book_id : "", &b, e);
	if (rc == 0 && (rc = db_acquire(d, &c, e)) == 0) {
		rc = store_media_all(c, a, book_id, &items, &n, e);
		db_release(c);
	}
	json_t *skipped = json_array();
	for (int i = 0; rc == 0 && i < n; i++) {
		struct chapter_media *m = &items[i];
		job_progress(jc, (double)i / n);
		if (m->summary_source && m->summary_rev == m->rev && m->summary && *m->summary) {
			done++;
			continue; /* summarised at this revision already */
		}
		if (job_should_stop(jc)) {
			rc = stopped(e);
			break;
		}
		char *plain, *summary = NULL, source[240] = "extractive";
		if ((rc = chapter_plain(d, a, book_id, m->id, &plain, e)))
			break;
		if (use_llm) {
			struct err le = { 0 };
			int lrc = summarize_llm(jc, a, &b, m, plain, &summary, source, sizeof(source), &le);
			if (lrc && job_should_stop(jc)) {
				rc = stopped(e);
				break;
			}
			if (lrc && lrc != ERR_UNAVAILABLE && lrc != ERR_INVALID) {
				rc = err_set(e, lrc, "%s", le.msg);
				break;
			}
			if (!summary)
				json_array_append_new(skipped,
						      json_pack("{s:I, s:s}", "chapter", (json_int_t)m->number, "reason",
								lrc ? le.msg
								    : "the language model gave no usable summary "
								      "(empty or UNKNOWN) after 3 tries"));
		} else if ((rc = summary_extractive(plain, SUMMARY_WORDS_EXTRACTIVE, a, &summary, e))) {
			break;
		} else if (!*summary) {
			json_array_append_new(skipped, json_pack("{s:I, s:s}", "chapter", (json_int_t)m->number, "reason",
								 "the chapter has no text to summarise"));
			summary = NULL;
		}
		if (!summary)
			continue;
		if ((rc = db_acquire(d, &c, e)) == 0) {
			rc = store_media_set_summary(c, m->id, summary, source, time_now_ms(), e);
			db_release(c);
		}
		touch_book(d, book_id);
		done += rc == 0;
	}
	json_object_set_new(st, "summaries", json_integer(done));
	json_object_set_new(st, "skipped", skipped);
	return rc;
}

/* ---- step 3: audio ----------------------------------------------------------------- */

struct sink_ctx {
	struct blob_writer *w;
	struct job_ctx *jc;
	struct err e;
};

static int sink(void *ctx, const void *data, size_t n)
{
	struct sink_ctx *s = ctx;
	if (job_should_stop(s->jc))
		return err_set(&s->e, ERR_UNAVAILABLE, "stopped");
	return blob_write(s->w, data, n, &s->e) ? -1 : 0;
}

static char *timings_json(const char *text, const struct tts_word *words, int n)
{
	json_t *arr = json_array();
	for (int i = 0; arr && i < n; i++) {
		const struct tts_word *w = &words[i];
		size_t len = w->char_end > w->char_start ? w->char_end - w->char_start : 0;
		json_array_append_new(arr, json_pack("{s:s%, s:I, s:I, s:I, s:I}", "word", text + w->char_start, len,
						     "start_ms", (json_int_t)w->start_ms, "end_ms",
						     (json_int_t)w->end_ms, "char_start", (json_int_t)w->char_start,
						     "char_end", (json_int_t)w->char_end));
	}
	char *s = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
	json_decref(arr);
	return s;
}

static void signature(const char *voice, const char *text, char out[17])
{
	uint64_t h = hash_fnv1a_bytes(HASH_FNV1A_SEED, voice, strlen(voice) + 1);
	h = hash_fnv1a_bytes(h, text, strlen(text));
	snprintf(out, 17, "%016" PRIx64, h);
}

/* Speaks one text into storage: timings first, then the audio committed,
 * then the chapter row (the checkpoint). */
static int synthesize(struct job_ctx *jc, const char *book_id, const struct chapter_media *m, enum media_kind kind,
		      const char *voice, const char *text, const char *sig, struct err *e)
{
	struct blob_store *bs = job_blob(jc);
	char key[200], tkey[200], url[160];
	struct sink_ctx s = { .jc = jc };
	struct tts_word *words = NULL;
	int nwords = 0;
	int64_t ms = 0;
	char *tj = NULL;
	pipeline_audio_key(key, sizeof(key), book_id, m->number, kind);
	pipeline_timings_key(tkey, sizeof(tkey), book_id, m->number, kind);
	snprintf(url, sizeof(url), "/api/v1/books/%s/chapters/%" PRId64 "/audio", book_id, m->number);
	int rc = blob_write_begin(bs, key, "audio/mpeg", &s.w, e);
	if (rc)
		return rc;
	rc = tts_speak(job_tts(jc), voice, text, sink, &s, &words, &nwords, &ms, e);
	if (rc && s.e.code)
		rc = err_set(e, s.e.code, "%s", s.e.msg);
	if (rc == 0 && !(tj = timings_json(text, words, nwords)))
		rc = err_set(e, ERR_INTERNAL, "out of memory");
	if (rc == 0)
		rc = blob_put(bs, tkey, "application/json", tj, strlen(tj), e);
	if (rc) {
		blob_write_abort(s.w);
		goto out;
	}
	if ((rc = blob_write_commit(s.w, e)))
		goto out;
	db_conn *c;
	if ((rc = db_acquire(job_db(jc), &c, e)) == 0) {
		rc = store_media_set_audio(c, m->id, kind, key, ms, sig, voice, url, time_now_ms(), e);
		db_release(c);
	}
	touch_book(job_db(jc), book_id);
out:
	free(tj);
	free(words);
	return rc;
}

const char *pipeline_resolve_voice(struct tts *t, const char *want)
{
	const struct tts_voice *list;
	int n = 0;
	if (!t || !want || !*want)
		return NULL;
	if (tts_voice_exists(t, want))
		return want;
	if (tts_voices(t, &list, &n))
		return NULL;
	/* "en" -> the first "en-*" voice; "pt-BR" -> "pt", then "pt-*". */
	size_t base = strcspn(want, "-_");
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < n; i++) {
			const char *v = list[i].name;
			if (pass == 0 && strlen(v) == base && !strncasecmp(v, want, base))
				return v;
			if (pass == 1 && !strncasecmp(v, want, base) && v[base] == '-')
				return v;
		}
	return NULL;
}

static const char *pick_voice(struct job_ctx *jc, const struct book *b)
{
	struct tts *t = job_tts(jc);
	const char *tries[] = { jstr(job_payload(jc), "voice"), job_default_voice(jc), b->language, "en" };
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		const char *v = pipeline_resolve_voice(t, tries[i]);
		if (v)
			return v;
	}
	return "en";
}

static int step_audio(struct job_ctx *jc, struct arena *a, struct err *e)
{
	json_t *st = job_state(jc);
	const char *book_id = jstr(st, "book_id");
	int narrate = json_is_true(json_object_get(job_payload(jc), "narrate"));
	db *d = job_db(jc);
	struct book b;
	struct chapter_media *items;
	int n = 0;
	db_conn *c;
	if (!job_tts(jc) || !job_blob(jc))
		return err_set(e, ERR_UNAVAILABLE, "speech or storage is not set up in this process");
	int rc = books_get(d, a, book_id ? book_id : "", &b, e);
	if (rc == 0 && (rc = db_acquire(d, &c, e)) == 0) {
		rc = store_media_all(c, a, book_id, &items, &n, e);
		db_release(c);
	}
	const char *voice = rc == 0 ? pick_voice(jc, &b) : "en";
	json_object_set_new(st, "voice", json_string(voice));
	int kinds = narrate ? 2 : 1;
	for (int i = 0; rc == 0 && i < n; i++) {
		struct chapter_media *m = &items[i];
		for (int k = 0; rc == 0 && k < kinds; k++) {
			job_progress(jc, (double)(i * kinds + k) / (n * kinds));
			const char *text = NULL;
			if (k == MEDIA_SUMMARY)
				text = m->summary;
			else if ((rc = chapter_plain(d, a, book_id, m->id, (char **)&text, e)))
				break;
			if (!text || !*text)
				continue;
			char sig[17];
			signature(voice, text, sig);
			struct blob_info bi;
			struct err se = { 0 };
			if (m->audio_sig[k] && !strcmp(m->audio_sig[k], sig) && m->audio_key[k] &&
			    blob_stat(job_blob(jc), m->audio_key[k], &bi, &se) == 0)
				continue; /* spoken already, in this voice */
			if (job_should_stop(jc)) {
				rc = stopped(e);
				break;
			}
			rc = synthesize(jc, book_id, m, (enum media_kind)k, voice, text, sig, e);
			if (rc && job_should_stop(jc))
				rc = stopped(e);
		}
	}
	/* What was committed, per chapter number: every count is 1 per kind
	 * unless a chapter was spoken again after its text changed. */
	json_t *syn = json_object(), *audio = json_array();
	if ((rc == 0 || rc == ERR_UNAVAILABLE) && db_acquire(d, &c, &(struct err){ 0 }) == 0) {
		struct err le = { 0 };
		if (store_media_all(c, a, book_id, &items, &n, &le) == 0)
			for (int i = 0; i < n; i++) {
				char num[24];
				snprintf(num, sizeof(num), "%" PRId64, items[i].number);
				json_object_set_new(syn, num, json_integer(items[i].syntheses));
				for (int k = 0; k < 2; k++)
					if (items[i].audio_key[k])
						json_array_append_new(
							audio, json_pack("{s:I, s:s, s:I}", "chapter",
									 (json_int_t)items[i].number, "kind",
									 kind_name((enum media_kind)k), "duration_ms",
									 (json_int_t)items[i].audio_ms[k]));
			}
		db_release(c);
	}
	json_object_set_new(st, "syntheses", syn);
	json_object_set_new(st, "audio", audio);
	return rc;
}

int pipeline_run(struct job_ctx *jc, struct err *e)
{
	struct arena a;
	arena_init(&a, 16384);
	int rc;
	switch (job_step(jc)) {
	case 0:
		rc = step_metadata(jc, &a, e);
		break;
	case 1:
		rc = step_chapters(jc, &a, e);
		break;
	case 2:
		rc = step_summaries(jc, &a, e);
		break;
	default:
		rc = step_audio(jc, &a, e);
		break;
	}
	publish(jc);
	arena_free(&a);
	return rc;
}
