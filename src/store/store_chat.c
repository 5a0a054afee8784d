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

/* ---- sessions ------------------------------------------------------------------ */

#define SESSION_COLS                                                                              \
	"s.id, s.user_id, s.book_id, s.title, s.created_at, s.updated_at, "                       \
	"(SELECT count(*) FROM chat_messages m WHERE m.session_id = s.id)"

static int session_cb(void *ctx, const db_row *r)
{
	struct grow *g = ctx;
	struct chat_session *s = grow_next(g);
	if (!s)
		return ERR_INTERNAL;
	db_row_copy(r, 0, s->id, UUID_STR_LEN);
	s->user_id = db_row_dup(r, 1, g->a);
	s->book_id = db_row_dup(r, 2, g->a);
	s->title = db_row_dup(r, 3, g->a);
	s->created_at = db_row_int(r, 4);
	s->updated_at = db_row_int(r, 5);
	s->messages = db_row_int(r, 6);
	return 0;
}

int store_chat_session_insert(db_conn *c, const struct chat_session *s, struct err *e)
{
	struct db_val p[] = { dbv_text(s->id), dbv_text(s->user_id), dbv_text(s->book_id), dbv_text(s->title),
			      dbv_int(s->created_at) };
	return db_query(c,
			"INSERT INTO chat_sessions (id, user_id, book_id, title, created_at, updated_at) "
			"VALUES ($1, $2, $3, $4, $5, $5)",
			p, 5, NULL, NULL, NULL, e);
}

int store_chat_session_get(db_conn *c, struct arena *a, const char *sid, struct chat_session *out, struct err *e)
{
	struct grow g = { a, NULL, sizeof(struct chat_session), 0, 0 };
	struct db_val p[] = { dbv_text(sid) };
	int rc = db_query(c, "SELECT " SESSION_COLS " FROM chat_sessions s WHERE s.id = $1", p, 1, session_cb, &g,
			  NULL, e);
	if (rc < 0)
		return rc;
	if (!g.n)
		return err_set(e, ERR_NOT_FOUND, "chat session not found");
	*out = *(struct chat_session *)g.items;
	return 0;
}

int store_chat_session_list(db_conn *c, struct arena *a, const char *user_id, const char *before, int limit,
			    struct chat_session **items, int *n, struct err *e)
{
	struct grow g = { a, NULL, sizeof(struct chat_session), 0, 0 };
	struct db_val p[] = { dbv_text(user_id), dbv_text(before), dbv_int(limit) };
	int rc = db_query(c,
			  "SELECT " SESSION_COLS " FROM chat_sessions s WHERE s.user_id = $1 "
			  "AND (CAST($2 AS TEXT) IS NULL OR s.id < $2) ORDER BY s.id DESC LIMIT $3",
			  p, 3, session_cb, &g, NULL, e);
	if (rc < 0)
		return rc;
	*items = g.items;
	*n = g.n;
	return 0;
}

int store_chat_session_delete(db_conn *c, const char *sid, struct err *e)
{
	struct db_val p[] = { dbv_text(sid) };
	int64_t changed = 0;
	int rc = db_query(c, "DELETE FROM chat_sessions WHERE id = $1", p, 1, NULL, NULL, &changed, e);
	return rc ? rc : changed ? 0 : err_set(e, ERR_NOT_FOUND, "chat session not found");
}

int store_chat_session_touch(db_conn *c, const char *sid, const char *title, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(sid), dbv_text(title), dbv_int(now) };
	return db_query(c, "UPDATE chat_sessions SET updated_at = $3, title = coalesce(title, $2) WHERE id = $1", p, 3,
			NULL, NULL, NULL, e);
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
	m->role = db_row_dup(r, 2, g->a);
	m->content = db_row_dup(r, 3, g->a);
	m->citations = db_row_dup(r, 4, g->a);
	m->selected_text = db_row_dup(r, 5, g->a);
	m->provider = db_row_dup(r, 6, g->a);
	m->model = db_row_dup(r, 7, g->a);
	m->prompt_tokens = db_row_int(r, 8);
	m->completion_tokens = db_row_int(r, 9);
	m->latency_ms = db_row_int(r, 10);
	m->created_at = db_row_int(r, 11);
	return 0;
}

int store_chat_message_insert(db_conn *c, const struct chat_message *m, struct err *e)
{
	struct db_val p[] = { dbv_text(m->id),	       dbv_text(m->session_id), dbv_text(m->role),
			      dbv_text(m->content),    dbv_text(m->citations),	dbv_text(m->selected_text),
			      dbv_text(m->provider),   dbv_text(m->model),	dbv_int(m->prompt_tokens),
			      dbv_int(m->completion_tokens), dbv_int(m->latency_ms), dbv_int(m->created_at) };
	return db_query(c,
			"INSERT INTO chat_messages (" MESSAGE_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
			"$11, $12)",
			p, 12, NULL, NULL, NULL, e);
}

int store_chat_recent(db_conn *c, struct arena *a, const char *session_id, int limit, struct chat_message **items,
		      int *n, struct err *e)
{
	struct grow g = { a, NULL, sizeof(struct chat_message), 0, 0 };
	struct db_val p[] = { dbv_text(session_id), dbv_int(limit) };
	int rc = db_query(c,
			  "SELECT " MESSAGE_COLS " FROM (SELECT * FROM chat_messages WHERE session_id = $1 "
			  "ORDER BY id DESC LIMIT $2) recent ORDER BY id",
			  p, 2, message_cb, &g, NULL, e);
	if (rc < 0)
		return rc;
	*items = g.items;
	*n = g.n;
	return 0;
}

int store_chat_messages(db_conn *c, struct arena *a, const char *session_id, const char *after, int limit,
			struct chat_message **items, int *n, struct err *e)
{
	struct grow g = { a, NULL, sizeof(struct chat_message), 0, 0 };
	struct db_val p[] = { dbv_text(session_id), dbv_text(after), dbv_int(limit) };
	int rc = db_query(c,
			  "SELECT " MESSAGE_COLS " FROM chat_messages WHERE session_id = $1 "
			  "AND (CAST($2 AS TEXT) IS NULL OR id > $2) ORDER BY id LIMIT $3",
			  p, 3, message_cb, &g, NULL, e);
	if (rc < 0)
		return rc;
	*items = g.items;
	*n = g.n;
	return 0;
}

/* ---- contexts and usage ---------------------------------------------------------- */

int store_chat_context_insert(db_conn *c, const char *cid, const char *session_id, const char *text,
			      const char *book_id, const char *chapter_id, int64_t now, struct err *e)
{
	struct db_val p[] = { dbv_text(cid),	 dbv_text(session_id), dbv_text(text),
			      dbv_text(book_id), dbv_text(chapter_id), dbv_int(now) };
	return db_query(c,
			"INSERT INTO chat_contexts (id, session_id, text, book_id, chapter_id, created_at) "
			"VALUES ($1, $2, $3, $4, $5, $6)",
			p, 6, NULL, NULL, NULL, e);
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
	m->texts[m->n] = db_row_dup(r, 0, m->a);
	m->chapters[m->n] = db_row_dup(r, 1, m->a);
	m->n++;
	return 0;
}

int store_chat_contexts(db_conn *c, struct arena *a, const char *session_id, int limit, char ***texts,
			char ***chapters, int *n, struct err *e)
{
	struct ctx_rows m = { a, arena_alloc(a, sizeof(char *) * (size_t)limit),
			      arena_alloc(a, sizeof(char *) * (size_t)limit), 0, limit };
	if (!m.texts || !m.chapters)
		return err_set(e, ERR_INTERNAL, "out of memory");
	struct db_val p[] = { dbv_text(session_id), dbv_int(limit) };
	int rc = db_query(c,
			  "SELECT text, chapter_id FROM chat_contexts WHERE session_id = $1 ORDER BY id DESC LIMIT $2",
			  p, 2, context_cb, &m, NULL, e);
	if (rc < 0)
		return rc;
	*texts = m.texts;
	*chapters = m.chapters;
	*n = m.n;
	return 0;
}

int store_chat_usage_add(db_conn *c, const char *subject, const char *day, int64_t tokens, struct err *e)
{
	struct db_val p[] = { dbv_text(subject), dbv_text(day), dbv_int(tokens) };
	return db_query(c,
			"INSERT INTO chat_usage (subject, day, tokens) VALUES ($1, $2, $3) "
			"ON CONFLICT (subject, day) DO UPDATE SET tokens = chat_usage.tokens + excluded.tokens",
			p, 3, NULL, NULL, NULL, e);
}

int store_chat_usage_get(db_conn *c, const char *subject, const char *day, int64_t *tokens, struct err *e)
{
	struct db_val p[] = { dbv_text(subject), dbv_text(day) };
	*tokens = 0;
	int rc = db_query(c, "SELECT tokens FROM chat_usage WHERE subject = $1 AND day = $2", p, 2,
			  db_row_first_int, tokens, NULL, e);
	return rc < 0 ? rc : 0;
}
