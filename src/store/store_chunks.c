#include "store_chunks.h"

#include <stdio.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/cache.h"
#include "../core/hash.h"
#include "../core/log.h"
#include "../core/mem.h"
#include "../core/normalize.h"
#include "../core/rcbuf.h"
#include "sqlite_rank.h"

#define CHUNK_COLS                                                                                  \
	"c.id, c.book_id, c.chapter_id, c.ordinal, c.heading, c.heading_path, c.anchor, c.char_start, " \
	"c.char_end, c.text, c.token_count, c.content_hash, c.created_at, c.updated_at, ch.number, ch.title, " \
	"c.language"

struct rows {
	struct arena *a;
	struct chunk_row *items;
	int n, cap;
	int with_score; /* an 18th column */
};

static int row_cb(void *ctx, const db_row *r)
{
	struct rows *m = ctx;
	if (!(m->items = arena_grow(m->a, m->items, m->n, &m->cap, sizeof(*m->items))))
		return ERR_INTERNAL;
	struct chunk_row *c = &m->items[m->n++];
	memset(c, 0, sizeof(*c));
	db_row_copy(r, 0, c->id, UUID_STR_LEN);
	db_row_copy(r, 1, c->book_id, UUID_STR_LEN);
	db_row_copy(r, 2, c->chapter_id, UUID_STR_LEN);
	c->ordinal = db_row_int(r, 3);
	c->heading = db_row_dup(r, 4, m->a);
	c->heading_path = db_row_dup(r, 5, m->a);
	c->anchor = db_row_dup(r, 6, m->a);
	c->char_start = db_row_int(r, 7);
	c->char_end = db_row_int(r, 8);
	c->text = db_row_dup(r, 9, m->a);
	c->token_count = db_row_int(r, 10);
	c->content_hash = db_row_dup(r, 11, m->a);
	c->created_at = db_row_int(r, 12);
	c->updated_at = db_row_int(r, 13);
	c->chapter_number = db_row_int(r, 14);
	c->chapter_title = db_row_dup(r, 15, m->a);
	c->language = db_row_dup(r, 16, m->a);
	if (m->with_score)
		c->score = db_row_real(r, 17);
	return 0;
}

static int many(db_conn *c, struct arena *a, struct db_stmt *s, const struct db_val *p, int np, int with_score,
		struct chunk_row **rows, int *n, struct err *e)
{
	struct rows m = { a, NULL, 0, 0, with_score };
	int rc = db_run(c, s, p, np, row_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	*rows = m.items;
	*n = m.n;
	return 0;
}

DB_STMT(chunks_of_chapter, "SELECT " CHUNK_COLS " FROM chunks c JOIN chapters ch ON ch.id = c.chapter_id "
			   "WHERE c.chapter_id = $1 AND c.language IS NULL ORDER BY c.ordinal");
DB_STMT(chunks_of_translation, "SELECT " CHUNK_COLS " FROM chunks c JOIN chapters ch ON ch.id = c.chapter_id "
			       "WHERE c.chapter_id = $1 AND c.language = $2 ORDER BY c.ordinal");
DB_STMT(chunk_by_id, "SELECT " CHUNK_COLS " FROM chunks c JOIN chapters ch ON ch.id = c.chapter_id WHERE c.id = $1");

int store_chunks_of_chapter(db_conn *c, struct arena *a, const char *chapter_id, const char *language,
			    struct chunk_row **rows, int *n, struct err *e)
{
	struct db_val p[] = { dbv_text(chapter_id), dbv_text(language) };
	if (language)
		return many(c, a, &chunks_of_translation, p, 2, 0, rows, n, e);
	return many(c, a, &chunks_of_chapter, p, 1, 0, rows, n, e);
}

int store_chunk_get(db_conn *c, struct arena *a, const char *id, struct chunk_row *out, struct err *e)
{
	struct db_val p[] = { dbv_text(id) };
	struct chunk_row *rows;
	int n;
	int rc = many(c, a, &chunk_by_id, p, 1, 0, &rows, &n, e);
	if (rc)
		return rc;
	if (!n)
		return err_set(e, ERR_NOT_FOUND, "chunk not found");
	*out = rows[0];
	return 0;
}

/* An id without its dashes, as chunks.scope has it (migration 8); returns the end. */
static char *undashed(char *out, const char *id)
{
	for (; *id; id++)
		if (*id != '-')
			*out++ = *id;
	return out;
}

DB_STMT(chunk_insert, "INSERT INTO chunks (id, book_id, chapter_id, ordinal, heading, heading_path, anchor, "
		      "char_start, char_end, text, token_count, content_hash, created_at, updated_at, "
		      "search_heading, search_text, language) "
		      "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14, $15, $16)");
DB_STMT(chunk_fts_insert, "INSERT INTO chunks_fts (rowid, heading_path, text, scope) "
			  "VALUES (last_insert_rowid(), $1, $2, $3)");
DB_STMT(chunk_move, "UPDATE chunks SET ordinal = $2, heading = $3, anchor = $4, char_start = $5, char_end = $6, "
		    "updated_at = $7 WHERE id = $1");
DB_STMT(chunk_delete, "DELETE FROM chunks WHERE id = $1");

static int chunk_insert_forms(db_conn *c, const struct chunk_row *r, const char *search_heading,
			      const char *search_text, struct err *e);

/* A translation's filter terms: "lt" and "l" with the tag without dashes,
 * lowercased, as the view chunks_search makes them ("" for the original). */
static void language_terms(char *out, size_t cap, const char *language)
{
	size_t o = 0;
	if (language && *language && cap > 8) {
		memcpy(out, " lt l", 5);
		o = 5;
		for (const char *p = language; *p && o + 1 < cap; p++)
			if (*p != '-')
				out[o++] = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	}
	out[o] = '\0';
}

int store_chunk_insert(db_conn *c, const struct chunk_row *r, struct err *e)
{
	char *sh = NULL, *st = NULL;
	if (norm_search_form_dup(r->heading_path, strlen(r->heading_path), &sh) < 0 ||
	    norm_search_form_dup(r->text, strlen(r->text), &st) < 0) {
		xfree(sh);
		return err_set(e, ERR_INTERNAL, "out of memory");
	}
	int rc = chunk_insert_forms(c, r, sh, st, e);
	xfree(sh);
	xfree(st);
	return rc;
}

static int chunk_insert_forms(db_conn *c, const struct chunk_row *r, const char *search_heading,
			      const char *search_text, struct err *e)
{
	struct db_val p[] = { dbv_text(r->id),	       dbv_text(r->book_id),	  dbv_text(r->chapter_id),
			      dbv_int(r->ordinal),     dbv_text(r->heading),	  dbv_text(r->heading_path),
			      dbv_text(r->anchor),     dbv_int(r->char_start),	  dbv_int(r->char_end),
			      dbv_text(r->text),       dbv_int(r->token_count),	  dbv_text(r->content_hash),
			      dbv_int(r->created_at),  dbv_text(search_heading), dbv_text(search_text),
			      dbv_text(r->language) };
	int rc = db_run(c, &chunk_insert, p, 16, NULL, NULL, NULL, e);
	if (rc || db_dialect(db_conn_db(c)) != DB_SQLITE)
		return rc;
	/* The FTS5 row, here rather than by a trigger: a trigger runs in a
	 * statement savepoint, at which FTS5 writes out its pending terms, so a
	 * trigger made a segment per chunk and indexing twice as slow. */
	char scope[2 * UUID_STR_LEN + 48], *s = scope;
	*s++ = 'b';
	s = undashed(s, r->book_id);
	*s++ = ' ';
	*s++ = 'c';
	s = undashed(s, r->chapter_id);
	language_terms(s, sizeof(scope) - (size_t)(s - scope), r->language);
	struct db_val f[] = { dbv_text(search_heading ? search_heading : r->heading_path),
			      dbv_text(search_text ? search_text : r->text), dbv_text(scope) };
	return db_run(c, &chunk_fts_insert, f, 3, NULL, NULL, NULL, e);
}

int store_chunk_move(db_conn *c, const struct chunk_row *r, struct err *e)
{
	struct db_val p[] = { dbv_text(r->id),	      dbv_int(r->ordinal),  dbv_text(r->heading),
			      dbv_text(r->anchor),    dbv_int(r->char_start), dbv_int(r->char_end),
			      dbv_int(r->updated_at) };
	return db_run(c, &chunk_move, p, 7, NULL, NULL, NULL, e);
}

DB_STMT(chunks_drop_translation, "DELETE FROM chunks WHERE chapter_id = $1 AND language = $2 AND anchor = $3");

int store_chunks_drop_translation(db_conn *c, const char *chapter_id, const char *language, const char *anchor,
				  struct err *e)
{
	struct db_val p[] = { dbv_text(chapter_id), dbv_text(language), dbv_text(anchor) };
	return db_run(c, &chunks_drop_translation, p, 3, NULL, NULL, NULL, e);
}

int store_chunk_delete(db_conn *c, const char *id, struct err *e)
{
	struct db_val p[] = { dbv_text(id) };
	return db_run(c, &chunk_delete, p, 1, NULL, NULL, NULL, e);
}

DB_STMT(only_book_q, "SELECT EXISTS (SELECT 1 FROM books WHERE id = $1) AND NOT EXISTS (SELECT 1 FROM books WHERE id <> $1)");

/* Is book_id the only book there is? */
static int only_book(db_conn *c, const char *book_id)
{
	struct db_val p[] = { dbv_text(book_id) };
	int64_t only = 0;
	struct err e = { 0 };
	if (db_run(c, &only_book_q, p, 1, db_row_first_int, &only, NULL, &e) < 0)
		return 0;
	return only != 0;
}

/* ---- keyword search on SQLite: BM25, leaving unread the rows that cannot win ----
 *
 * FTS5 scores every row holding any term of the query. A question's common
 * words ("how", "the", "in") are in most rows of a large book, and scoring
 * 55,000 rows takes ~100 ms. Yet a common word can add little to a row's
 * score: at most sqlite_rank_bound() of its IDF. So (MaxScore, with one
 * split) the terms are split by those bounds into common and rare ones; the
 * rows with a rare term are scored on every term, by bookd_bm25(), which
 * scores the leading phrases only, so "(all) AND (rare)" does not count the
 * rare terms twice; and when the limit-th best score is more than the common
 * terms together could give a row without a rare term, no such row can be in
 * the answer, which is therefore exact. Otherwise every matching row is
 * scored, as bm25() would.
 *
 * Document frequencies are counted once per version of the index and cached
 * in `stats`: the version is a hash of FTS5's structure record (rowid 10 of
 * chunks_fts_data), which FTS5 rewrites whenever a write changes the index,
 * in this process or another. */

#define KW_WEIGHTS "2 1 0" /* heading path 2, text 1, scope (the filters) 0 */
#define KW_COLUMNS "{heading_path text} : "

struct kw_term {
	const char *text;
	int64_t df;
	double bound;
};

static int version_cb(void *ctx, const db_row *r)
{
	size_t len = 0;
	const char *p = db_row_text(r, 0, &len);
	uint64_t *h = ctx; /* over both records */
	*h = hash_fnv1a_bytes(*h, p, p ? len : 0);
	return 0;
}

/* Records 1 (row and token totals) and 10 (the segments): every commit that
 * changes the index rewrites one or both. 0 when unknown. */
DB_STMT(fts_version, "SELECT block FROM chunks_fts_data WHERE id IN (1, 10) ORDER BY id");

static int64_t index_version(db_conn *c)
{
	uint64_t h = HASH_FNV1A_SEED;
	struct err e = { 0 };
	if (db_run(c, &fts_version, NULL, 0, version_cb, &h, NULL, &e) < 0)
		return 0;
	return (int64_t)(h >> 1) | 1; /* never 0 */
}

/* A count from the cache if the index is as it was when it was counted. */
static int cached_count(db_conn *c, struct cache *stats, int64_t version, const char *key, struct db_stmt *s,
			const char *arg, int64_t *out, struct err *e)
{
	int cacheable = stats && version && strlen(key) < 100; /* the cache's keys are shorter than 112 */
	struct rcbuf *b = cacheable ? cache_get(stats, key, version) : NULL;
	if (b) {
		memcpy(out, b->data, sizeof(*out));
		rcbuf_unref(b);
		return 0;
	}
	struct db_val p[] = { dbv_text(arg) };
	*out = 0;
	int rc = db_run(c, s, p, arg ? 1 : 0, db_row_first_int, out, NULL, e);
	if (rc < 0)
		return rc;
	if (cacheable && (b = rcbuf_new(out, sizeof(*out)))) {
		cache_put(stats, key, version, b);
		rcbuf_unref(b);
	}
	return 0;
}

/* "{columns} : ("t1" OR "t2" ...)" */
static int or_terms(struct buf *q, const struct kw_term *t, int from, int to)
{
	int brc = buf_puts(q, KW_COLUMNS "(");
	for (int i = from; !brc && i < to; i++)
		brc = buf_printf(q, "%s\"%s\"", i > from ? " OR " : "", t[i].text);
	return brc ? brc : buf_puts(q, ")");
}

DB_STMT(chunk_total, "SELECT count(*) FROM chunks");
DB_STMT(fts_df, "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH $1");
/* Rank inside FTS5 and keep the top rows before joining: joining every
 * match first costs O(matches) row lookups. */
DB_STMT(fts_top, "SELECT " CHUNK_COLS ", f.score FROM (SELECT rowid, bookd_bm25(chunks_fts, '" KW_WEIGHTS "', $2) AS score "
		 "FROM chunks_fts WHERE chunks_fts MATCH $1 ORDER BY score DESC LIMIT $3) f "
		 "JOIN chunks c ON c.rowid = f.rowid JOIN chapters ch ON ch.id = c.chapter_id "
		 "ORDER BY f.score DESC, c.id");

static int sqlite_keyword(db_conn *c, struct arena *a, struct cache *stats, const char *const *terms, int nterms,
			  const char *book_id, const char *chapter_id, const char *language, int limit,
			  struct chunk_row **rows, int *n, struct err *e)
{
	*rows = NULL;
	*n = 0;
	int64_t version = index_version(c), nrows = 0;
	int rc = cached_count(c, stats, version, "rows", &chunk_total, NULL, &nrows, e);
	if (rc)
		return rc;
	struct kw_term t[RANK_MAX_PHRASES];
	int nt = 0;
	for (int i = 0; i < nterms && nt < RANK_MAX_PHRASES; i++) {
		char key[128];
		struct buf match;
		buf_init(&match, 16384);
		snprintf(key, sizeof(key), "df/%s", terms[i]); /* a longer one is not cached */
		if (buf_printf(&match, KW_COLUMNS "\"%s\"", terms[i])) {
			buf_free(&match);
			return err_set(e, ERR_INVALID, "the query is too long");
		}
		t[nt].text = terms[i];
		rc = cached_count(c, stats, version, key, &fts_df, match.p, &t[nt].df, e);
		buf_free(&match);
		if (rc)
			return rc;
		if (t[nt].df == 0)
			continue; /* in no row: it can neither match nor score */
		t[nt].bound = sqlite_rank_bound(sqlite_rank_idf((double)nrows, (double)t[nt].df));
		nt++;
	}
	if (!nt)
		return 0;
	/* The common terms: the lowest bounds, while together they stay under
	 * half the highest (a row needs more than that to matter). */
	for (int i = 1; i < nt; i++)
		for (int j = i; j > 0 && t[j].bound < t[j - 1].bound; j--) {
			struct kw_term x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	int ncommon = 0;
	double common = 0;
	while (ncommon < nt - 1 && common + t[ncommon].bound < t[nt - 1].bound / 2)
		common += t[ncommon++].bound;

	char dfs[RANK_MAX_PHRASES * 21 + 1];
	size_t dl = 0;
	for (int i = 0; i < nt; i++)
		dl += (size_t)snprintf(dfs + dl, sizeof(dfs) - dl, "%s%lld", i ? " " : "", (long long)t[i].df);
	char filters[2 * UUID_STR_LEN + 120] = "", id[UUID_STR_LEN];
	/* The filters are terms of the scope column: FTS5 intersects them. A
	 * filter on the only book filters nothing, and is left out. */
	if (book_id && !chapter_id && only_book(c, book_id))
		book_id = NULL;
	if (book_id) {
		*undashed(id, book_id) = '\0';
		snprintf(filters, sizeof(filters), " AND scope : \"b%s\"", id);
	}
	if (chapter_id) {
		*undashed(id, chapter_id) = '\0';
		snprintf(filters + strlen(filters), sizeof(filters) - strlen(filters), " AND scope : \"c%s\"", id);
	}
	/* A translation's rows carry "lt" and their language's term; the
	 * original text is what is not a translation. */
	char lang[48];
	language_terms(lang, sizeof(lang), language);
	if (*lang)
		snprintf(filters + strlen(filters), sizeof(filters) - strlen(filters), " AND scope : \"%s\"",
			 lang + 4);
	else
		snprintf(filters + strlen(filters), sizeof(filters) - strlen(filters), " NOT scope : \"lt\"");
	for (int pass = ncommon ? 0 : 1; pass < 2; pass++) {
		struct buf q;
		buf_init(&q, 16384);
		int brc = or_terms(&q, t, 0, nt); /* the scored phrases: first, in the order of dfs */
		if (!brc && pass == 0)
			brc = buf_puts(&q, " AND ") || or_terms(&q, t, ncommon, nt);
		if (!brc)
			brc = buf_puts(&q, filters);
		if (brc) {
			buf_free(&q);
			return err_set(e, ERR_INVALID, "the query is too long");
		}
		struct db_val p[] = { dbv_text(q.p), dbv_text(dfs), dbv_int(limit) };
		rc = many(c, a, &fts_top, p, 3, 1, rows, n, e);
		buf_free(&q);
		if (rc)
			return rc;
		/* Exact if a row with common terms only could not have made the list. */
		if (pass == 0 && limit > 0 && *n == limit && (*rows)[*n - 1].score > common) {
			log_debug("keyword search: rows with only the %d commonest of %d terms left unread", ncommon, nt);
			break;
		}
	}
	return 0;
}

DB_STMT(pg_keyword, "SELECT " CHUNK_COLS ", ts_rank(c.tsv, query) AS score FROM chunks c "
		    "JOIN chapters ch ON ch.id = c.chapter_id, to_tsquery('english', $1) query "
		    "WHERE c.tsv @@ query AND (CAST($2 AS TEXT) IS NULL OR c.book_id = $2) "
		    "AND (CAST($3 AS TEXT) IS NULL OR c.chapter_id = $3) "
		    "AND (CAST($5 AS TEXT) IS NULL AND c.language IS NULL OR c.language = $5) "
		    "ORDER BY score DESC, c.id LIMIT $4");

int store_chunks_keyword(db_conn *c, struct arena *a, struct cache *stats, const char *const *terms, int nterms,
			 const char *book_id, const char *chapter_id, const char *language, int limit,
			 struct chunk_row **rows, int *n, struct err *e)
{
	if (language && !*language)
		language = NULL;
	int lang_ok = 1;
	for (const char *p = language; p && *p; p++)
		lang_ok &= (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-';
	if (nterms <= 0 || !lang_ok || (language && strlen(language) > 35) || (book_id && !uuid_valid(book_id, strlen(book_id))) ||
	    (chapter_id && !uuid_valid(chapter_id, strlen(chapter_id)))) { /* no such book or chapter */
		*rows = NULL;
		*n = 0;
		return 0;
	}
	if (db_dialect(db_conn_db(c)) != DB_POSTGRES) {
		/* One snapshot for the version, the counts and both passes: a
		 * commit between them could make a bound too small. A deferred
		 * BEGIN only reads: it waits for no writer. */
		int rc = db_begin_read(c, e);
		if (rc < 0)
			return rc;
		rc = sqlite_keyword(c, a, stats, terms, nterms, book_id, chapter_id, language, limit, rows, n, e);
		if (!rc)
			rc = db_commit(c, e);
		if (rc)
			db_rollback(c);
		return rc;
	}
	/* Terms hold letters and digits only (search.c): to_tsquery sees
	 * lexemes and '|'. Scores: ts_rank with the heading path at weight A
	 * (1.0) and text at B (0.4). */
	struct buf q;
	buf_init(&q, 16384);
	int brc = 0;
	for (int i = 0; !brc && i < nterms; i++)
		brc = buf_printf(&q, "%s%s", i ? " | " : "", terms[i]);
	if (brc) {
		buf_free(&q);
		return err_set(e, ERR_INVALID, "the query is too long");
	}
	struct db_val p[] = { dbv_text(q.p ? q.p : ""), dbv_text(book_id), dbv_text(chapter_id), dbv_int(limit),
			      dbv_text(language) };
	int rc = many(c, a, &pg_keyword, p, 5, 1, rows, n, e);
	buf_free(&q);
	return rc;
}

static int stats_cb(void *ctx, const db_row *r)
{
	int64_t **o = ctx;
	*o[0] = db_row_int(r, 0);
	*o[1] = db_row_is_null(r, 1) ? 0 : db_row_int(r, 1);
	return 1;
}

DB_STMT(chunk_count, "SELECT count(*) FROM chunks WHERE CAST($1 AS TEXT) IS NULL OR book_id = $1");

int store_chunk_count(db_conn *c, const char *book_id, int64_t *n, struct err *e)
{
	struct db_val p[] = { dbv_text(book_id) };
	*n = 0;
	int rc = db_run(c, &chunk_count, p, 1, db_row_first_int, n, NULL, e);
	return rc < 0 ? rc : 0;
}

DB_STMT(chunks_unembedded, "SELECT " CHUNK_COLS " FROM chunks c JOIN chapters ch ON ch.id = c.chapter_id "
			   "WHERE (CAST($2 AS TEXT) IS NULL OR c.book_id = $2) AND NOT EXISTS "
			   "(SELECT 1 FROM embeddings em WHERE em.chunk_id = c.id AND em.model = $1 "
			   "AND em.content_hash = c.content_hash) ORDER BY c.id LIMIT $3");
DB_STMT(embedding_put, "INSERT INTO embeddings (chunk_id, model, dim, vector, content_hash, created_at) "
		       "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (chunk_id, model) DO UPDATE SET "
		       "dim = excluded.dim, vector = excluded.vector, content_hash = excluded.content_hash, "
		       "created_at = excluded.created_at");
DB_STMT(embeddings_scan, "SELECT em.chunk_id, c.book_id, c.chapter_id, em.dim, em.vector, em.created_at "
			 "FROM embeddings em JOIN chunks c ON c.id = em.chunk_id "
			 "WHERE em.model = $1 AND em.created_at >= $2 ORDER BY em.created_at");
DB_STMT(embedding_stats, "SELECT count(*), max(created_at) FROM embeddings WHERE model = $1");
DB_STMT(embedding_dim, "SELECT dim FROM embeddings WHERE model = $1 ORDER BY created_at DESC LIMIT 1");

int store_chunks_unembedded(db_conn *c, struct arena *a, const char *model, const char *book_id, int limit,
			    struct chunk_row **rows, int *n, struct err *e)
{
	struct db_val p[] = { dbv_text(model), dbv_text(book_id), dbv_int(limit) };
	return many(c, a, &chunks_unembedded, p, 3, 0, rows, n, e);
}

int store_embedding_put(db_conn *c, const char *chunk_id, const char *model, int dim, const char *vector_b64,
			const char *content_hash, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(chunk_id), dbv_text(model), dbv_int(dim), dbv_text(vector_b64),
			      dbv_text(content_hash), dbv_int(now) };
	return db_run(c, &embedding_put, p, 6, NULL, NULL, NULL, e);
}

int store_embeddings_scan(db_conn *c, const char *model, int64_t since, db_row_fn fn, void *ctx, struct err *e)
{
	struct db_val p[] = { dbv_text(model), dbv_int(since) };
	return db_run(c, &embeddings_scan, p, 2, fn, ctx, NULL, e);
}

int store_embedding_stats(db_conn *c, const char *model, int64_t *count, int64_t *max_created, struct err *e)
{
	struct db_val p[] = { dbv_text(model) };
	int64_t *o[2] = { count, max_created };
	*count = *max_created = 0;
	int rc = db_run(c, &embedding_stats, p, 1, stats_cb, o, NULL, e);
	return rc < 0 ? rc : 0;
}

int store_embedding_dim(db_conn *c, const char *model, int64_t *dim, struct err *e)
{
	struct db_val p[] = { dbv_text(model) };
	*dim = 0;
	int rc = db_run(c, &embedding_dim, p, 1, db_row_first_int, dim, NULL, e);
	return rc < 0 ? rc : 0;
}
