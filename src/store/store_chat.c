#include "store_chat.h"

#include <stdio.h>
#include <string.h>

/* A growable array filled by row callbacks. */
struct grow {
	struct arena *a;
	void *items;
	size_t size;
	int n, cap;
};

static void *grow_next(struct grow *g)
{
	if (!(g->items = arena_grow(g->a, g->items, g->n, &g->cap, g->size)))
		return NULL;
	return (char *)g->items + g->size * (size_t)g->n++;
}

/* A text column copied into the arena: NULL for SQL NULL; ERR_INTERNAL when
 * the copy fails (never a silent NULL in place of a value). */
static int dup_col(const db_row *r, int col, struct arena *a, char **out)
{
	size_t n;
	const char *t = db_row_text(r, col, &n);
	*out = t ? arena_strndup(a, t, n) : NULL;
	return t && !*out ? ERR_INTERNAL : 0;
}

/* A row callback's failure carries no message: name it. */
static int rows_rc(int rc, struct err *e)
{
	if (rc < 0 && !e->code)
		err_set(e, rc, "out of memory");
	return rc;
}

/* ---- sessions ------------------------------------------------------------------ */

#define SESSION_COLS                                                                              \
	"s.id, s.user_id, s.book_id, s.title, s.created_at, s.updated_at, "                       \
	"(SELECT count(*) FROM chat_messages m WHERE m.session_id = s.id), s.client_key"

static int session_cb(void *ctx, const db_row *r)
{
	struct grow *g = ctx;
	struct chat_session *s = grow_next(g);
	if (!s)
		return ERR_INTERNAL;
	db_row_copy(r, 0, s->id, UUID_STR_LEN);
	if (dup_col(r, 1, g->a, &s->user_id) || dup_col(r, 2, g->a, &s->book_id) || dup_col(r, 3, g->a, &s->title) ||
	    dup_col(r, 7, g->a, &s->client_key))
		return ERR_INTERNAL;
	s->created_at = db_row_int(r, 4);
	s->updated_at = db_row_int(r, 5);
	s->messages = db_row_int(r, 6);
	return 0;
}

/* A keyed session that another request has just made is not an error: the
 * caller finds it by its key (store_chat_session_by_key) and joins it. */
DB_STMT(chat_session_insert, "INSERT INTO chat_sessions (id, user_id, book_id, title, created_at, updated_at, client_key) "
	"VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT DO NOTHING");

int store_chat_session_insert(db_conn *c, const struct chat_session *s, int *inserted, struct err *e)
{
	struct db_val p[] = { dbv_text(s->id),		dbv_text(s->user_id), dbv_text(s->book_id),
			      dbv_text(s->title),	dbv_int(s->created_at), dbv_text(s->client_key) };
	int64_t changed = 0;
	int rc = db_run(c, &chat_session_insert, p, 6, NULL, NULL, &changed, e);
	if (inserted)
		*inserted = changed > 0;
	return rc < 0 ? rc : 0;
}

DB_STMT(chat_session_by_key, "SELECT " SESSION_COLS " FROM chat_sessions s "
	"WHERE coalesce(s.user_id, '') = $1 AND s.client_key = $2");

int store_chat_session_by_key(db_conn *c, struct arena *a, const char *user_id, const char *key,
			      struct chat_session *out, struct err *e)
{
	struct grow g = { a, NULL, sizeof(struct chat_session), 0, 0 };
	struct db_val p[] = { dbv_text(user_id ? user_id : ""), dbv_text(key) };
	int rc = db_run(c, &chat_session_by_key, p, 2, session_cb, &g, NULL, e);
	if (rc < 0)
		return rows_rc(rc, e);
	if (!g.n)
		return err_set(e, ERR_NOT_FOUND, "chat session not found");
	*out = *(struct chat_session *)g.items;
	return 0;
}

DB_STMT(chat_session_get, "SELECT " SESSION_COLS " FROM chat_sessions s WHERE s.id = $1");

int store_chat_session_get(db_conn *c, struct arena *a, const char *sid, struct chat_session *out, struct err *e)
{
	struct grow g = { a, NULL, sizeof(struct chat_session), 0, 0 };
	struct db_val p[] = { dbv_text(sid) };
	int rc = db_run(c, &chat_session_get, p, 1, session_cb, &g, NULL, e);
	if (rc < 0)
		return rows_rc(rc, e);
	if (!g.n)
		return err_set(e, ERR_NOT_FOUND, "chat session not found");
	*out = *(struct chat_session *)g.items;
	return 0;
}

DB_STMT(chat_session_list, "SELECT " SESSION_COLS " FROM chat_sessions s WHERE s.user_id = $1 "
	"AND (CAST($2 AS TEXT) IS NULL OR s.id < $2) ORDER BY s.id DESC LIMIT $3");

int store_chat_session_list(db_conn *c, struct arena *a, const char *user_id, const char *before, int limit,
			    struct chat_session **items, int *n, struct err *e)
{
	struct grow g = { a, NULL, sizeof(struct chat_session), 0, 0 };
	struct db_val p[] = { dbv_text(user_id), dbv_text(before), dbv_int(limit) };
	int rc = db_run(c, &chat_session_list, p, 3, session_cb, &g, NULL, e);
	if (rc < 0)
		return rows_rc(rc, e);
	*items = g.items;
	*n = g.n;
	return 0;
}

DB_STMT(chat_session_delete, "DELETE FROM chat_sessions WHERE id = $1");

int store_chat_session_delete(db_conn *c, const char *sid, struct err *e)
{
	struct db_val p[] = { dbv_text(sid) };
	int64_t changed = 0;
	int rc = db_run(c, &chat_session_delete, p, 1, NULL, NULL, &changed, e);
	return rc ? rc : changed ? 0 : err_set(e, ERR_NOT_FOUND, "chat session not found");
}

DB_STMT(chat_session_touch, "UPDATE chat_sessions SET updated_at = $3, title = coalesce(title, $2) WHERE id = $1");

int store_chat_session_touch(db_conn *c, const char *sid, const char *title, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(sid), dbv_text(title), dbv_int(now) };
	return db_run(c, &chat_session_touch, p, 3, NULL, NULL, NULL, e);
}

/* ---- messages ------------------------------------------------------------------ */

#define MESSAGE_COLS                                                                                   \
	"id, session_id, role, content, citations, selected_text, provider, model, prompt_tokens, "     \
	"completion_tokens, latency_ms, created_at"

static int message_cb(void *ctx, const db_row *r)
{
	struct grow *g = ctx;
	struct chat_message *m = grow_next(g);
	if (!m)
		return ERR_INTERNAL;
	db_row_copy(r, 0, m->id, UUID_STR_LEN);
	db_row_copy(r, 1, m->session_id, UUID_STR_LEN);
	if (dup_col(r, 2, g->a, &m->role) || dup_col(r, 3, g->a, &m->content) || dup_col(r, 4, g->a, &m->citations) ||
	    dup_col(r, 5, g->a, &m->selected_text) || dup_col(r, 6, g->a, &m->provider) ||
	    dup_col(r, 7, g->a, &m->model))
		return ERR_INTERNAL;
	m->prompt_tokens = db_row_int(r, 8);
	m->completion_tokens = db_row_int(r, 9);
	m->latency_ms = db_row_int(r, 10);
	m->created_at = db_row_int(r, 11);
	return 0;
}

DB_STMT(chat_message_insert, "INSERT INTO chat_messages (" MESSAGE_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
	"$11, $12)");

int store_chat_message_insert(db_conn *c, const struct chat_message *m, struct err *e)
{
	struct db_val p[] = { dbv_text(m->id),	       dbv_text(m->session_id), dbv_text(m->role),
			      dbv_text(m->content),    dbv_text(m->citations),	dbv_text(m->selected_text),
			      dbv_text(m->provider),   dbv_text(m->model),	dbv_int(m->prompt_tokens),
			      dbv_int(m->completion_tokens), dbv_int(m->latency_ms), dbv_int(m->created_at) };
	return db_run(c, &chat_message_insert, p, 12, NULL, NULL, NULL, e);
}

DB_STMT(chat_recent, "SELECT " MESSAGE_COLS " FROM (SELECT * FROM chat_messages WHERE session_id = $1 "
	"ORDER BY id DESC LIMIT $2) recent ORDER BY id");

int store_chat_recent(db_conn *c, struct arena *a, const char *session_id, int limit, struct chat_message **items,
		      int *n, struct err *e)
{
	struct grow g = { a, NULL, sizeof(struct chat_message), 0, 0 };
	struct db_val p[] = { dbv_text(session_id), dbv_int(limit) };
	int rc = db_run(c, &chat_recent, p, 2, message_cb, &g, NULL, e);
	if (rc < 0)
		return rows_rc(rc, e);
	*items = g.items;
	*n = g.n;
	return 0;
}

DB_STMT(chat_messages_page, "SELECT " MESSAGE_COLS " FROM chat_messages WHERE session_id = $1 "
	"AND (CAST($2 AS TEXT) IS NULL OR id > $2) ORDER BY id LIMIT $3");

int store_chat_messages(db_conn *c, struct arena *a, const char *session_id, const char *after, int limit,
			struct chat_message **items, int *n, struct err *e)
{
	struct grow g = { a, NULL, sizeof(struct chat_message), 0, 0 };
	struct db_val p[] = { dbv_text(session_id), dbv_text(after), dbv_int(limit) };
	int rc = db_run(c, &chat_messages_page, p, 3, message_cb, &g, NULL, e);
	if (rc < 0)
		return rows_rc(rc, e);
	*items = g.items;
	*n = g.n;
	return 0;
}

DB_STMT(chat_context_insert, "INSERT INTO chat_contexts (id, session_id, text, book_id, chapter_id, created_at) "
	"VALUES ($1, $2, $3, $4, $5, $6)");

/* ---- contexts and usage ---------------------------------------------------------- */

int store_chat_context_insert(db_conn *c, const char *cid, const char *session_id, const char *text,
			      const char *book_id, const char *chapter_id, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(cid),	 dbv_text(session_id), dbv_text(text),
			      dbv_text(book_id), dbv_text(chapter_id), dbv_int(now) };
	return db_run(c, &chat_context_insert, p, 6, NULL, NULL, NULL, e);
}

struct ctx_rows {
	struct arena *a;
	char **texts, **chapters;
	int n, cap;
};

static int context_cb(void *ctx, const db_row *r)
{
	struct ctx_rows *m = ctx;
	if (m->n >= m->cap)
		return 1;
	if (dup_col(r, 0, m->a, &m->texts[m->n]) || dup_col(r, 1, m->a, &m->chapters[m->n]))
		return ERR_INTERNAL;
	m->n++;
	return 0;
}

DB_STMT(chat_contexts_recent, "SELECT text, chapter_id FROM chat_contexts WHERE session_id = $1 ORDER BY id DESC LIMIT $2");

int store_chat_contexts(db_conn *c, struct arena *a, const char *session_id, int limit, char ***texts,
			char ***chapters, int *n, struct err *e)
{
	struct ctx_rows m = { a, arena_alloc(a, sizeof(char *) * (size_t)limit),
			      arena_alloc(a, sizeof(char *) * (size_t)limit), 0, limit };
	if (!m.texts || !m.chapters)
		return err_set(e, ERR_INTERNAL, "out of memory");
	struct db_val p[] = { dbv_text(session_id), dbv_int(limit) };
	int rc = db_run(c, &chat_contexts_recent, p, 2, context_cb, &m, NULL, e);
	if (rc < 0)
		return rows_rc(rc, e);
	*texts = m.texts;
	*chapters = m.chapters;
	*n = m.n;
	return 0;
}

DB_STMT(chat_usage_add, "INSERT INTO chat_usage (subject, day, tokens) VALUES ($1, $2, $3) "
	"ON CONFLICT (subject, day) DO UPDATE SET tokens = chat_usage.tokens + excluded.tokens");

int store_chat_usage_add(db_conn *c, const char *subject, const char *day, int64_t tokens, struct err *e)
{
	struct db_val p[] = { dbv_text(subject), dbv_text(day), dbv_int(tokens) };
	return db_run(c, &chat_usage_add, p, 3, NULL, NULL, NULL, e);
}

DB_STMT(chat_usage_reserve, "INSERT INTO chat_usage (subject, day, tokens) VALUES ($1, $2, $3) "
	"ON CONFLICT (subject, day) DO UPDATE SET tokens = chat_usage.tokens + excluded.tokens "
	"WHERE chat_usage.tokens + excluded.tokens <= $4");

int store_chat_usage_reserve(db_conn *c, const char *subject, const char *day, int64_t tokens, int64_t limit,
			     int *granted, struct err *e)
{
	struct db_val p[] = { dbv_text(subject), dbv_text(day), dbv_int(tokens), dbv_int(limit) };
	int64_t changed = 0;
	*granted = 0;
	if (tokens > limit)
		return 0;
	int rc = db_run(c, &chat_usage_reserve, p, 4, NULL, NULL, &changed, e);
	if (rc == 0)
		*granted = changed > 0;
	return rc < 0 ? rc : 0;
}

DB_STMT(chat_usage_get, "SELECT tokens FROM chat_usage WHERE subject = $1 AND day = $2");

int store_chat_usage_get(db_conn *c, const char *subject, const char *day, int64_t *tokens, struct err *e)
{
	struct db_val p[] = { dbv_text(subject), dbv_text(day) };
	*tokens = 0;
	int rc = db_run(c, &chat_usage_get, p, 2, db_row_first_int, tokens, NULL, e);
	return rc < 0 ? rc : 0;
}

/* ---- feedback on answers ----------------------------------------------------------- */

static int answer_cb(void *ctx, const db_row *r)
{
	struct chat_answer_ref *m = ctx;
	struct arena *a = m->arena;
	db_row_copy(r, 0, m->session_id, UUID_STR_LEN);
	if (dup_col(r, 1, a, &m->role) || dup_col(r, 2, a, &m->user_id))
		return ERR_INTERNAL;
	m->found = 1;
	return 0;
}

DB_STMT(chat_message_ref, "SELECT m.session_id, m.role, s.user_id FROM chat_messages m "
	"JOIN chat_sessions s ON s.id = m.session_id WHERE m.id = $1");

int store_chat_message_ref(db_conn *c, struct arena *a, const char *message_id, struct chat_answer_ref *out,
			   struct err *e)
{
	memset(out, 0, sizeof(*out));
	out->arena = a;
	struct db_val p[] = { dbv_text(message_id) };
	int rc = db_run(c, &chat_message_ref, p, 1, answer_cb, out, NULL, e);
	if (rc < 0)
		return rows_rc(rc, e);
	return out->found ? 0 : err_set(e, ERR_NOT_FOUND, "message not found");
}

DB_STMT(chat_feedback_put, "INSERT INTO chat_feedback (id, message_id, rater, user_id, rating, comment, created_at) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (message_id, rater) DO UPDATE SET "
	"rating = excluded.rating, comment = excluded.comment, created_at = excluded.created_at");

int store_chat_feedback_put(db_conn *c, const struct chat_feedback *f, const char *rater, struct err *e)
{
	struct db_val p[] = { dbv_text(f->id),	    dbv_text(f->message_id), dbv_text(rater),
			      dbv_text(f->user_id), dbv_int(f->rating),	     dbv_text(f->comment),
			      dbv_int(f->created_at) };
	return db_run(c, &chat_feedback_put, p, 7, NULL, NULL, NULL, e);
}

static int feedback_cb(void *ctx, const db_row *r)
{
	struct grow *g = ctx;
	struct chat_feedback *f = grow_next(g);
	if (!f)
		return ERR_INTERNAL;
	db_row_copy(r, 0, f->id, UUID_STR_LEN);
	db_row_copy(r, 1, f->message_id, UUID_STR_LEN);
	db_row_copy(r, 2, f->session_id, UUID_STR_LEN);
	if (dup_col(r, 3, g->a, &f->user_id) || dup_col(r, 5, g->a, &f->comment) || dup_col(r, 7, g->a, &f->answer) ||
	    dup_col(r, 8, g->a, &f->book_id))
		return ERR_INTERNAL;
	f->rating = (int)db_row_int(r, 4);
	f->created_at = db_row_int(r, 6);
	return 0;
}

DB_STMT(chat_feedback_list, "SELECT f.id, f.message_id, m.session_id, f.user_id, f.rating, f.comment, f.created_at, "
	"m.content, s.book_id FROM chat_feedback f JOIN chat_messages m ON m.id = f.message_id "
	"JOIN chat_sessions s ON s.id = m.session_id "
	"WHERE (CAST($1 AS TEXT) IS NULL OR f.id < $1) ORDER BY f.id DESC LIMIT $2");

int store_chat_feedback_list(db_conn *c, struct arena *a, const char *before, int limit, struct chat_feedback **items,
			     int *n, struct err *e)
{
	struct grow g = { a, NULL, sizeof(struct chat_feedback), 0, 0 };
	struct db_val p[] = { dbv_text(before), dbv_int(limit) };
	int rc = db_run(c, &chat_feedback_list, p, 2, feedback_cb, &g, NULL, e);
	if (rc < 0)
		return rows_rc(rc, e);
	*items = g.items;
	*n = g.n;
	return 0;
}
