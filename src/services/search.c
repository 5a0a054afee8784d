#include "search.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <utf8proc.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/cache.h"
#include "../core/log.h"
#include "../core/text.h"
#include "../core/mem.h"
#include "../core/normalize.h"
#include "../core/timeutil.h"
#include "../store/store_books.h"
#include "chunker.h"
#include "vindex.h"

#define TERM_STATS_BYTES (512 * 1024) /* ~3,000 words' document frequencies */
#define RRF_K 60.0
#define EMBED_ROUND 256 /* chunks fetched and embedded per round */
#define REINDEX_BATCH 8	/* chapters per transaction of a reindex */

struct search {
	db *db;
	int chunk_tokens, sync_ms;
	struct embedder *em;
	/* The vector index of the current model; swapped whole on a rebuild. */
	pthread_rwlock_t vlock;
	struct vindex *vi;
	int64_t synced_count, synced_max;
	pthread_t sync;
	int sync_started;
	atomic_int stopping;
	pthread_mutex_t wake_lock;
	pthread_cond_t wake;
	struct cache *term_stats; /* the keyword index's counts, for the store */
};

int search_new(struct search **out, db *d, const struct search_config *cfg, struct err *e)
{
	struct search *s = xcalloc(1, sizeof(*s));
	if (!s)
		return err_set(e, ERR_INTERNAL, "out of memory");
	s->db = d;
	s->chunk_tokens = cfg->chunk_tokens > 0 ? cfg->chunk_tokens : CHUNK_DEFAULT_TOKENS;
	s->sync_ms = cfg->sync_ms > 0 ? cfg->sync_ms : 1000;
	pthread_rwlock_init(&s->vlock, NULL);
	pthread_mutex_init(&s->wake_lock, NULL);
	pthread_cond_init(&s->wake, NULL);
	if (!(s->term_stats = cache_new(TERM_STATS_BYTES))) {
		search_free(s);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	if (cfg->embed && cfg->embed->url && *cfg->embed->url && !(s->em = embedder_new(cfg->embed, cfg->stop))) {
		search_free(s);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	*out = s;
	return 0;
}

void search_free(struct search *s)
{
	if (!s)
		return;
	if (s->sync_started) {
		atomic_store(&s->stopping, 1);
		pthread_mutex_lock(&s->wake_lock);
		pthread_cond_broadcast(&s->wake);
		pthread_mutex_unlock(&s->wake_lock);
		pthread_join(s->sync, NULL);
	}
	vindex_free(s->vi);
	embedder_free(s->em);
	pthread_rwlock_destroy(&s->vlock);
	pthread_mutex_destroy(&s->wake_lock);
	pthread_cond_destroy(&s->wake);
	cache_free(s->term_stats);
	xfree(s);
}

int search_has_embedder(const struct search *s)
{
	return s->em != NULL;
}

/* ---- indexing -------------------------------------------------------------- */

static int index_chapter_tx(struct search *s, db_conn *c, struct arena *a, const struct chapter *ch,
			    struct index_stats *st, struct err *e)
{
	struct chunk *nc;
	int nn;
	int rc = chunk_markdown(ch->title, ch->content_markdown, ch->content_len, s->chunk_tokens, a, &nc, &nn, e);
	if (rc)
		return rc;
	struct chunk_row *old;
	int no;
	if ((rc = store_chunks_of_chapter(c, a, ch->id, NULL, &old, &no, e)) != 0)
		return rc;
	char *used = no ? arena_alloc(a, (size_t)no) : NULL;
	if (no && !used)
		return err_set(e, ERR_INTERNAL, "out of memory");
	if (used)
		memset(used, 0, (size_t)no);
	int64_t now = time_now_ms();
	for (int i = 0; i < nn && !rc; i++) {
		struct chunk *k = &nc[i];
		struct chunk_row r = { 0 };
		snprintf(r.book_id, sizeof(r.book_id), "%s", ch->book_id);
		snprintf(r.chapter_id, sizeof(r.chapter_id), "%s", ch->id);
		r.ordinal = k->ordinal;
		r.heading = k->heading;
		r.heading_path = k->heading_path;
		r.anchor = k->anchor;
		r.char_start = (int64_t)k->char_start;
		r.char_end = (int64_t)k->char_end;
		r.text = k->text;
		r.token_count = k->token_count;
		r.content_hash = k->content_hash;
		r.created_at = r.updated_at = now;
		int match = -1;
		for (int j = 0; j < no; j++)
			if (!used[j] && !strcmp(old[j].content_hash, k->content_hash)) {
				match = j;
				break;
			}
		if (match >= 0) {
			used[match] = 1;
			struct chunk_row *o = &old[match];
			memcpy(r.id, o->id, sizeof(r.id));
			if (o->ordinal != r.ordinal || o->char_start != r.char_start || o->char_end != r.char_end ||
			    strcmp(o->anchor ? o->anchor : "", r.anchor ? r.anchor : "") ||
			    strcmp(o->heading ? o->heading : "", r.heading ? r.heading : "")) {
				rc = store_chunk_move(c, &r, e);
				st->moved++;
			} else {
				st->unchanged++;
			}
		} else {
			if (uuid_v7(r.id))
				return err_set(e, ERR_INTERNAL, "no randomness");
			rc = store_chunk_insert(c, &r, e);
			st->added++;
		}
	}
	for (int j = 0; j < no && !rc; j++)
		if (!used[j]) {
			rc = store_chunk_delete(c, old[j].id, e);
			st->removed++;
		}
	st->chunks += nn;
	st->chapters++;
	return rc;
}

int search_index_translation(db_conn *c, const char *book_id, const char *chapter_id, const char *chapter_title,
			     const char *language, int position, const char *anchor, const char *md, size_t n,
			     struct err *e)
{
	if (!language || !*language || !anchor)
		return err_set(e, ERR_INVALID, "a translation's chunks need a language and an anchor");
	int rc = store_chunks_drop_translation(c, chapter_id, language, anchor, e);
	if (rc || !md || n == 0)
		return rc;
	struct arena a;
	arena_init(&a, 16384);
	char *text = arena_strndup(&a, md, n);
	struct chunk *nc;
	int nn = 0;
	if (!text)
		rc = err_set(e, ERR_INTERNAL, "out of memory");
	else
		rc = chunk_markdown(chapter_title ? chapter_title : "", text, n, CHUNK_DEFAULT_TOKENS, &a, &nc, &nn, e);
	int64_t now = time_now_ms();
	for (int i = 0; i < nn && !rc; i++) {
		struct chunk *k = &nc[i];
		struct chunk_row r = { 0 };
		if (uuid_v7(r.id)) {
			rc = err_set(e, ERR_INTERNAL, "no randomness");
			break;
		}
		snprintf(r.book_id, sizeof(r.book_id), "%s", book_id);
		snprintf(r.chapter_id, sizeof(r.chapter_id), "%s", chapter_id);
		/* after the chapter's own chunks' range, in section order */
		r.ordinal = (int64_t)position * 1000 + k->ordinal;
		r.heading = k->heading;
		r.heading_path = k->heading_path;
		r.anchor = (char *)anchor;
		r.char_start = (int64_t)k->char_start;
		r.char_end = (int64_t)k->char_end;
		r.text = k->text;
		r.token_count = k->token_count;
		r.content_hash = k->content_hash;
		r.language = (char *)language;
		r.created_at = r.updated_at = now;
		rc = store_chunk_insert(c, &r, e);
	}
	arena_free(&a);
	return rc;
}

/* Chapters of one book, in one transaction that holds the book
 * (store_book_lock) and reads each chapter inside it, so two index jobs for
 * the same chapter run one after the other and the last one indexes the
 * newest text. A chapter deleted meanwhile is skipped. */
static int index_some(struct search *s, db_conn *c, const char *book_id, const char *const *chapter_ids,
		      int n, struct index_stats *st, struct err *e)
{
	struct arena a;
	arena_init(&a, 64 * 1024);
	int rc = db_begin(c, e);
	if (rc == 0) {
		rc = store_book_lock(c, book_id, e);
		for (int i = 0; rc == 0 && i < n; i++) {
			struct chapter ch;
			rc = store_chapter_get(c, &a, book_id, chapter_ids[i], &ch, e);
			if (rc == 0)
				rc = index_chapter_tx(s, c, &a, &ch, st, e);
			else if (rc == ERR_NOT_FOUND && n > 1)
				err_clear(e), rc = 0;
			arena_free(&a); /* each chapter's text, chunks and rows go */
			arena_init(&a, 64 * 1024);
		}
		if (rc == 0)
			rc = db_commit(c, e);
		if (rc)
			db_rollback(c);
	}
	arena_free(&a);
	return rc;
}

static int index_one(struct search *s, db_conn *c, const char *book_id, const char *chapter_id,
		     struct index_stats *st, struct err *e)
{
	return index_some(s, c, book_id, &chapter_id, 1, st, e);
}

int search_index_chapter(struct search *s, const char *book_id, const char *chapter_id, struct index_stats *st,
			 struct err *e)
{
	db_conn *c;
	int rc = db_acquire(s->db, &c, e);
	if (rc == 0) {
		rc = index_one(s, c, book_id, chapter_id, st, e);
		db_release(c);
	}
	return rc;
}

int search_index_book(struct search *s, const char *book_id, search_progress_fn progress, void *ctx,
		      struct index_stats *st, struct err *e)
{
	struct arena a;
	arena_init(&a, 64 * 1024);
	db_conn *c;
	int rc = db_acquire(s->db, &c, e);
	if (rc) {
		arena_free(&a);
		return rc;
	}
	struct {
		struct arena *a;
		char **ids;
		int n, cap;
	} books = { &a, NULL, 0, 0 };
	if (book_id) {
		books.ids = arena_alloc(&a, sizeof(char *));
		if (books.ids && (books.ids[0] = arena_strdup(&a, book_id)) != NULL)
			books.n = books.cap = 1;
		else
			rc = err_set(e, ERR_INTERNAL, "out of memory");
	} else {
		rc = store_book_ids(c, &a, &books.ids, &books.n, e);
	}
	/* Count the chapters first, for progress. */
	int total = 0, done = 0;
	struct chapter **per_book = arena_alloc(&a, sizeof(*per_book) * (size_t)(books.n ? books.n : 1));
	int *counts = arena_alloc(&a, sizeof(int) * (size_t)(books.n ? books.n : 1));
	for (int b = 0; rc == 0 && b < books.n; b++) {
		struct book bk;
		if ((rc = store_book_get(c, &a, books.ids[b], &bk, e)) != 0)
			break;
		rc = store_chapter_all(c, &a, books.ids[b], &per_book[b], &counts[b], e);
		total += counts[b];
	}
	/* A transaction per REINDEX_BATCH chapters: each commit turns FTS5's
	 * pending terms into a segment that later merges rewrite, so batching
	 * halves the keyword index's cost, while the write lock is still given
	 * up often enough for the server's writes. */
	const char *ids[REINDEX_BATCH];
	for (int b = 0; rc == 0 && b < books.n; b++)
		for (int i = 0; rc == 0 && i < counts[b]; i += REINDEX_BATCH) {
			int n = MIN(REINDEX_BATCH, counts[b] - i);
			for (int k = 0; k < n; k++)
				ids[k] = per_book[b][i + k].id;
			rc = index_some(s, c, books.ids[b], ids, n, st, e);
			if (rc == ERR_NOT_FOUND) /* the book was deleted meanwhile */
				err_clear(e), rc = 0;
			done += n;
			if (progress)
				progress(ctx, done, total);
		}
	db_release(c);
	arena_free(&a);
	return rc;
}

static char *vector_b64(const float *v, int dim)
{
	size_t n = sizeof(float) * (size_t)dim;
	size_t len = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char *out = xmalloc(len);
	if (out)
		sodium_bin2base64(out, len, (const unsigned char *)v, n, sodium_base64_VARIANT_ORIGINAL);
	return out; /* float32, little-endian: the byte order of every machine bookd builds on */
}

int search_embed_pending(struct search *s, const char *book_id, search_progress_fn progress, void *ctx,
			 int (*should_stop)(void *ctx), struct index_stats *st, struct err *e)
{
	if (!s->em)
		return 0;
	int rc = 0, done = 0;
	while (rc == 0) {
		if (should_stop && should_stop(ctx))
			return err_set(e, ERR_UNAVAILABLE, "stopped");
		struct arena a;
		arena_init(&a, 256 * 1024);
		db_conn *c;
		struct chunk_row *rows = NULL;
		int n = 0;
		if ((rc = db_acquire(s->db, &c, e)) == 0) {
			rc = store_chunks_unembedded(c, &a, embedder_key(s->em), book_id, EMBED_ROUND, &rows, &n, e);
			db_release(c);
		}
		if (rc || n == 0) {
			arena_free(&a);
			break;
		}
		const char **texts = arena_alloc(&a, sizeof(char *) * (size_t)n);
		for (int i = 0; texts && i < n; i++)
			texts[i] = arena_printf(&a, "%s\n%s", rows[i].heading_path, rows[i].text);
		float *vecs = NULL;
		int dim = 0;
		rc = texts ? embedder_embed(s->em, texts, n, &vecs, &dim, e) : err_set(e, ERR_INTERNAL, "out of memory");
		if (rc == 0 && (rc = db_acquire(s->db, &c, e)) == 0) {
			int64_t now = time_now_ms();
			for (int i = 0; rc == 0 && i < n; i++) {
				char *b64 = vector_b64(vecs + (size_t)i * (size_t)dim, dim);
				rc = b64 ? store_embedding_put(c, rows[i].id, embedder_key(s->em), dim, b64,
							       rows[i].content_hash, now, e)
					 : err_set(e, ERR_INTERNAL, "out of memory");
				xfree(b64);
			}
			db_release(c);
			st->embedded += n;
			done += n;
			if (progress)
				progress(ctx, done, done + (n == EMBED_ROUND ? EMBED_ROUND : 0));
		}
		xfree(vecs);
		arena_free(&a);
		pthread_mutex_lock(&s->wake_lock);
		pthread_cond_broadcast(&s->wake); /* new vectors: let the sync pick them up now */
		pthread_mutex_unlock(&s->wake_lock);
	}
	return rc;
}

/* ---- the vector index follows the database --------------------------------- */

struct loader {
	struct vindex *vi;
	int64_t max_created;
	float *buf;
	int dim;
};

static int load_cb(void *ctx, const db_row *r)
{
	struct loader *l = ctx;
	int dim = (int)db_row_int(r, 3);
	if (dim != l->dim)
		return 0; /* a vector of another size (model change in progress): skip */
	size_t n;
	const char *b64 = db_row_text(r, 4, &n);
	size_t got = 0;
	if (!b64 || sodium_base642bin((unsigned char *)l->buf, sizeof(float) * (size_t)dim, b64, n, NULL, &got, NULL,
				      sodium_base64_VARIANT_ORIGINAL) ||
	    got != sizeof(float) * (size_t)dim)
		return 0;
	char id[UUID_STR_LEN], book[UUID_STR_LEN], chapter[UUID_STR_LEN];
	snprintf(id, sizeof(id), "%s", db_row_text(r, 0, NULL));
	snprintf(book, sizeof(book), "%s", db_row_text(r, 1, NULL));
	snprintf(chapter, sizeof(chapter), "%s", db_row_text(r, 2, NULL));
	if (vindex_upsert(l->vi, id, book, chapter, l->buf))
		return ERR_INTERNAL;
	int64_t created = db_row_int(r, 5);
	if (created > l->max_created)
		l->max_created = created;
	return 0;
}

static void sync_once(struct search *s)
{
	struct err e = { 0 };
	db_conn *c;
	if (db_acquire(s->db, &c, &e))
		return;
	const char *model = embedder_key(s->em);
	int64_t count, max;
	if (store_embedding_stats(c, model, &count, &max, &e))
		goto out;
	pthread_rwlock_rdlock(&s->vlock);
	size_t have = s->vi ? vindex_count(s->vi) : 0;
	int dim = s->vi ? vindex_dim(s->vi) : 0;
	pthread_rwlock_unlock(&s->vlock);
	if (count == s->synced_count && max == s->synced_max && (size_t)count == have)
		goto out;
	if (!dim) {
		int64_t newest = 0;
		if (store_embedding_dim(c, model, &newest, &e) != 0 || newest <= 0 || newest > INT_MAX / (int)sizeof(float))
			goto out;
		dim = (int)newest;
	}
	struct loader l = { NULL, 0, xmalloc(sizeof(float) * (size_t)dim), dim };
	if (!l.buf)
		goto out;
	/* New rows only, unless rows went away (a deleted chapter): then rebuild. */
	int rebuild = !s->vi || (size_t)count < have || count < s->synced_count;
	if (rebuild) {
		l.vi = vindex_new(dim);
		if (l.vi && store_embeddings_scan(c, model, 0, load_cb, &l, &e) == 0) {
			pthread_rwlock_wrlock(&s->vlock);
			struct vindex *old = s->vi;
			s->vi = l.vi;
			pthread_rwlock_unlock(&s->vlock);
			vindex_free(old);
			s->synced_max = l.max_created;
		} else {
			vindex_free(l.vi);
		}
	} else {
		l.vi = s->vi;
		if (store_embeddings_scan(c, model, s->synced_max, load_cb, &l, &e) == 0 && l.max_created)
			s->synced_max = l.max_created;
	}
	s->synced_count = count;
	xfree(l.buf);
out:
	db_release(c);
}

static void *sync_loop(void *arg)
{
	struct search *s = arg;
	while (!atomic_load(&s->stopping)) {
		sync_once(s);
		struct timespec ts = time_after_ms(CLOCK_REALTIME, s->sync_ms);
		pthread_mutex_lock(&s->wake_lock);
		if (!atomic_load(&s->stopping))
			pthread_cond_timedwait(&s->wake, &s->wake_lock, &ts);
		pthread_mutex_unlock(&s->wake_lock);
	}
	return NULL;
}

int search_start_sync(struct search *s, struct err *e)
{
	if (!s->em)
		return 0;
	sync_once(s);
	if (pthread_create(&s->sync, NULL, sync_loop, s))
		return err_set(e, ERR_INTERNAL, "cannot start the vector sync thread");
	s->sync_started = 1;
	return 0;
}

/* ---- querying -------------------------------------------------------------- */

int search_terms(const char *q, struct arena *a, const char ***terms)
{
	char *form = NULL;
	if (norm_search_form(a, q, strlen(q), &form) < 0) {
		*terms = NULL;
		return 0;
	}
	return text_terms(form ? form : q, a, terms);
}

static int keyword(struct search *s, struct arena *a, const char *q, const char *book_id, const char *chapter_id,
		   const char *language, int limit, struct chunk_row **rows, int *n, struct err *e)
{
	const char **terms;
	int nt = search_terms(q, a, &terms);
	*rows = NULL;
	*n = 0;
	if (!nt)
		return 0;
	db_conn *c;
	int rc = db_acquire(s->db, &c, e);
	if (rc)
		return rc;
	rc = store_chunks_keyword(c, a, s->term_stats, terms, nt, book_id, chapter_id, language, limit, rows, n, e);
	db_release(c);
	return rc;
}

static int same_language(const char *a, const char *b)
{
	return (!a || !*a) ? (!b || !*b) : (b && !strcasecmp(a, b));
}

static int vector(struct search *s, struct arena *a, const char *q, const char *book_id, const char *chapter_id,
		  const char *language, int limit, struct chunk_row **rows, int *n, struct err *e)
{
	*rows = NULL;
	*n = 0;
	float *qv = NULL;
	int dim = 0;
	int rc = embedder_embed_query(s->em, q, &qv, &dim, e);
	if (rc)
		return rc;
	struct vhit *hits = arena_alloc(a, sizeof(*hits) * (size_t)limit);
	int nh = 0;
	pthread_rwlock_rdlock(&s->vlock);
	if (s->vi && hits && vindex_dim(s->vi) == dim)
		nh = vindex_search(s->vi, qv, limit, book_id, chapter_id, hits);
	pthread_rwlock_unlock(&s->vlock);
	xfree(qv);
	struct chunk_row *out = arena_alloc(a, sizeof(*out) * (size_t)(nh ? nh : 1));
	if (!out)
		return err_set(e, ERR_INTERNAL, "out of memory");
	db_conn *c;
	if ((rc = db_acquire(s->db, &c, e)) != 0)
		return rc;
	int k = 0;
	for (int i = 0; i < nh; i++) {
		struct err ge = { 0 };
		if (store_chunk_get(c, a, hits[i].chunk_id, &out[k], &ge) == 0 && /* gone since: skip */
		    same_language(language, out[k].language)) {
			out[k].score = hits[i].score;
			k++;
		}
	}
	db_release(c);
	*rows = out;
	*n = k;
	return 0;
}

int search_query(struct search *s, struct arena *a, const char *q, const char *book_id, const char *chapter_id,
		 int limit, enum search_mode mode, struct search_hit **hits, int *n, struct err *e)
{
	return search_query_lang(s, a, q, book_id, chapter_id, NULL, limit, mode, hits, n, e);
}

int search_query_lang(struct search *s, struct arena *a, const char *q, const char *book_id, const char *chapter_id,
		      const char *language, int limit, enum search_mode mode, struct search_hit **hits, int *n,
		      struct err *e)
{
	if (mode == SEARCH_DEFAULT)
		mode = s->em ? SEARCH_HYBRID : SEARCH_KEYWORD;
	if ((mode == SEARCH_VECTOR || mode == SEARCH_HYBRID) && !s->em)
		return err_set(e, ERR_INVALID, "vector search needs an embedding provider (BOOKD_EMBED_URL)");
	struct chunk_row *kw = NULL, *vec = NULL;
	int nk = 0, nv = 0, rc = 0;
	int depth = mode == SEARCH_HYBRID ? limit * 3 : limit;
	if (mode != SEARCH_VECTOR && (rc = keyword(s, a, q, book_id, chapter_id, language, depth, &kw, &nk, e)) != 0)
		return rc;
	if (mode != SEARCH_KEYWORD && (rc = vector(s, a, q, book_id, chapter_id, language, depth, &vec, &nv, e)) != 0) {
		if (mode == SEARCH_VECTOR)
			return rc;
		log_warn("hybrid search: vector part failed (%s); keyword results only", e->msg);
		err_clear(e);
		nv = 0;
	}
	struct search_hit *out = arena_alloc(a, sizeof(*out) * (size_t)(nk + nv + 1));
	if (!out)
		return err_set(e, ERR_INTERNAL, "out of memory");
	int m = 0;
	if (mode != SEARCH_HYBRID) {
		struct chunk_row *src = mode == SEARCH_KEYWORD ? kw : vec;
		int ns = mode == SEARCH_KEYWORD ? nk : nv;
		for (int i = 0; i < ns && m < limit; i++)
			out[m++] = (struct search_hit){ src[i], src[i].score };
	} else {
		/* Reciprocal rank fusion: each list contributes 1 / (k + rank). */
		for (int list = 0; list < 2; list++) {
			struct chunk_row *src = list ? vec : kw;
			int ns = list ? nv : nk;
			for (int i = 0; i < ns; i++) {
				double add = 1.0 / (RRF_K + i + 1);
				int j = 0;
				while (j < m && strcmp(out[j].row.id, src[i].id))
					j++;
				if (j == m)
					out[m++] = (struct search_hit){ src[i], 0 };
				out[j].score += add;
			}
		}
		/* Sort by fused score (insertion sort: a few dozen entries). */
		for (int i = 1; i < m; i++) {
			struct search_hit h = out[i];
			int j = i;
			while (j > 0 && (out[j - 1].score < h.score ||
					 (out[j - 1].score == h.score && strcmp(out[j - 1].row.id, h.row.id) > 0))) {
				out[j] = out[j - 1];
				j--;
			}
			out[j] = h;
		}
		if (m > limit)
			m = limit;
	}
	*hits = out;
	*n = m;
	return 0;
}
