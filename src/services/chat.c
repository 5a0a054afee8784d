#include "chat.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/text.h"
#include "../core/mem.h"
#include "../core/json.h"
#include "../core/timeutil.h"
#include "../core/utf8.h"

#define MAX_PASSAGES 20
#define QUOTE_MAX 240
#define SELECTION_IN_QUERY 300

struct chat {
	db *db;
	struct search *search;
	struct llm_chain *llm;
	struct chat_config cfg;
};

int chat_new(struct chat **out, db *d, struct search *s, struct llm_chain *llm, const struct chat_config *cfg,
	     struct err *e)
{
	struct chat *c = xcalloc(1, sizeof(*c));
	if (!c)
		return err_set(e, ERR_INTERNAL, "out of memory");
	c->db = d;
	c->search = s;
	c->llm = llm;
	c->cfg = *cfg;
	*out = c;
	return 0;
}

void chat_describe_models(const struct chat *c, char *out, size_t cap)
{
	llm_chain_describe(c->llm, out, cap);
}

void chat_free(struct chat *c)
{
	xfree(c);
}

static int tokens_of(const char *s)
{
	return (int)((strlen(s) + 3) / 4);
}

/* ---- sessions --------------------------------------------------------------- */

/*
 * A session is named by bookd's id or by a key the client minted. Anonymous
 * sessions (no user) are reachable by anonymous callers only, a user's by
 * that user only. A client key is looked up among the caller's own sessions
 * (a user's, or the anonymous callers' shared space), so a key that names
 * someone else's conversation names a new, separate one for this caller: an
 * anonymous key is a bearer capability, a user's key is useless to anyone else.
 */
static int owns(const struct chat_session *s, const char *user_id)
{
	if (!s->user_id || !*s->user_id)
		return !user_id;
	return user_id && !strcmp(s->user_id, user_id);
}

int chat_session_key_valid(const char *key)
{
	size_t n = 0;
	for (; key[n]; n++)
		if ((unsigned char)key[n] < 0x20 || (unsigned char)key[n] > 0x7e)
			return 0;
	return n >= 1 && n <= CHAT_KEY_MAX;
}

static int session_for(struct chat *c, db_conn *conn, struct arena *a, const char *user_id, const char *id,
		       struct chat_session *out, struct err *e)
{
	(void)c;
	int rc = ERR_NOT_FOUND;
	if (uuid_valid(id, strlen(id))) {
		rc = store_chat_session_get(conn, a, id, out, e);
		if (rc == 0 && !owns(out, user_id))
			rc = ERR_NOT_FOUND;
	}
	if (rc == ERR_NOT_FOUND && chat_session_key_valid(id)) {
		err_clear(e);
		rc = store_chat_session_by_key(conn, a, user_id, id, out, e);
	}
	if (rc == ERR_NOT_FOUND)
		rc = err_set(e, ERR_NOT_FOUND, "chat session not found");
	return rc;
}

/* A session is stored with its first exchange (or not at all, when the
 * answer fails): nothing is written before the model is asked. `key`: the
 * client's id for it, or NULL. */
static int new_session(const char *user_id, const char *book_id, const char *key, struct chat_session *out,
		       struct err *e)
{
	memset(out, 0, sizeof(*out));
	if (uuid_v7(out->id))
		return err_set(e, ERR_INTERNAL, "no randomness");
	out->user_id = (char *)user_id;
	out->book_id = (char *)book_id;
	out->client_key = (char *)key;
	out->created_at = out->updated_at = time_now_ms();
	return 0;
}

/* Stores a new session; a keyed one that a concurrent request has just
 * stored is joined instead (its id in s->id). */
static int store_session(db_conn *conn, struct arena *a, struct chat_session *s, struct err *e)
{
	int inserted = 0;
	int rc = store_chat_session_insert(conn, s, &inserted, e);
	struct chat_session other;
	if (rc == 0 && !inserted && s->client_key &&
	    (rc = store_chat_session_by_key(conn, a, s->user_id, s->client_key, &other, e)) == 0)
		memcpy(s->id, other.id, sizeof(s->id));
	else if (rc == 0 && !inserted)
		rc = err_set(e, ERR_CONFLICT, "chat session exists");
	return rc;
}

/* ---- citations ------------------------------------------------------------------ */

/* One kept marker: "[n]", and n listed once among the cited. */
static int keep_marker(struct buf *out, int n, int *cited, int *ncited)
{
	int seen = 0;
	for (int j = 0; j < *ncited; j++)
		seen |= cited[j] == n;
	if (!seen && *ncited < MAX_PASSAGES)
		cited[(*ncited)++] = n;
	return buf_printf(out, "[%d]", n);
}

/* A marker at p ("[n]" or "[n, m, …]"): its numbers (0 for one that points
 * at no possible passage) and the byte after it; 0 when p starts no marker. */
static int parse_marker(const char *p, int nums[8], const char **after)
{
	if (p[0] != '[' || !isdigit((unsigned char)p[1]))
		return 0;
	const char *q = p + 1;
	int k = 0;
	for (;;) {
		if (!isdigit((unsigned char)*q) || k == 8)
			return 0;
		long v = 0;
		while (isdigit((unsigned char)*q)) {
			v = v > MAX_PASSAGES ? v : v * 10 + (*q - '0');
			q++;
		}
		nums[k++] = v >= 1 && v <= MAX_PASSAGES ? (int)v : 0;
		while (*q == ' ')
			q++;
		if (*q != ',')
			break;
		q++;
		while (*q == ' ')
			q++;
	}
	if (*q != ']')
		return 0;
	*after = q + 1;
	return k;
}

/* Removing a marker must not make one of the text before and after it: an
 * open "[" or "[1," left in the output ("[1[9]]", "[[9]1]") goes with the
 * marker it enclosed. */
static void drop_open_marker(struct buf *out)
{
	for (;;) {
		size_t i = out->n;
		while (i > 0 && strchr("0123456789, ", out->p[i - 1]))
			i--;
		if (i == 0 || out->p[i - 1] != '[' || (i < out->n && !isdigit((unsigned char)out->p[i])))
			break;
		out->n = i - 1;
		out->p[out->n] = '\0';
	}
}

/*
 * Markers are ASCII and everything else is copied whole, a character at a
 * time (an invalid byte becomes U+FFFD), so the result is valid UTF-8 by
 * construction. It may be longer than the answer ("[1,2]" becomes "[1][2]",
 * at most 3/2 of the bytes; a replaced byte takes three): the buffer grows,
 * and its cap (three times the answer) is an error, never a cut. Cleaning
 * the result again changes nothing: every marker left is in range.
 */
char *chat_clean_markers(const char *answer, int np, int *cited, int *ncited)
{
	size_t len = strlen(answer);
	struct buf out;
	buf_init(&out, len > (SIZE_MAX - 16) / 3 ? SIZE_MAX - 16 : 3 * len + 16);
	int rc = 0;
	*ncited = 0;
	for (const char *p = answer; !rc && *p;) {
		int nums[8];
		const char *after;
		int k = parse_marker(p, nums, &after);
		if (k) {
			int kept = 0;
			for (int i = 0; !rc && i < k; i++) {
				if (nums[i] < 1 || nums[i] > np)
					continue; /* points at no passage: dropped */
				rc = keep_marker(&out, nums[i], cited, ncited);
				kept = 1;
			}
			if (!kept && out.n)
				drop_open_marker(&out);
			/* A dropped marker leaves no stray space behind ("B [7]." -> "B."). */
			if (!kept && out.n && out.p[out.n - 1] == ' ' && (!*after || strchr(" .,;:!?)", *after)))
				out.n--, out.p[out.n] = '\0';
			p = after;
			continue;
		}
		size_t rest = strlen(p), n = utf8_first_invalid(p, rest < 4 ? rest : 4);
		if (n == 0) {
			rc = buf_puts(&out, "\xef\xbf\xbd"); /* U+FFFD for a byte that starts no character */
			p++;
			continue;
		}
		/* one character (or a run of ASCII up to the next '[') */
		size_t m = 1;
		if ((unsigned char)*p >= 0x80)
			while (m < n && ((unsigned char)p[m] & 0xc0) == 0x80)
				m++;
		else
			while (p[m] && p[m] != '[' && (unsigned char)p[m] < 0x80)
				m++;
		rc = buf_append(&out, p, m);
		p += m;
	}
	char *s = rc ? NULL : buf_steal(&out);
	buf_free(&out);
	return s;
}

/* A verbatim quote from the passage: its sentence that best matches `about`. */
static char *quote_from(struct arena *a, const char *passage, const char *about)
{
	if (!passage)
		return NULL;
	struct text_sentence ss[128];
	int ns = text_sentences(passage, ss, 128);
	const char **terms;
	int nt = text_terms(about, a, &terms);
	int best = -1, best_score = -1;
	for (int i = 0; i < ns; i++) {
		int sc = text_overlap(ss[i].p, ss[i].n, terms, nt);
		if (sc > best_score) {
			best = i;
			best_score = sc;
		}
	}
	if (best < 0)
		return arena_strndup(a, passage, utf8_prefix(passage, strlen(passage), QUOTE_MAX));
	size_t n = ss[best].n;
	if (n > QUOTE_MAX) { /* cut at a word boundary (else a character's), still verbatim */
		size_t cut = QUOTE_MAX;
		while (cut > 40 && ss[best].p[cut] != ' ')
			cut--;
		n = ss[best].p[cut] == ' ' ? cut : utf8_prefix(ss[best].p, n, QUOTE_MAX);
	}
	return arena_strndup(a, ss[best].p, n);
}

static json_t *citation_json(int n, const struct search_hit *h, const char *quote)
{
	const struct chunk_row *r = &h->row;
	return json_pack("{s:i, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:f}", "n", n, "chunk_id", r->id, "book_id",
			 r->book_id, "chapter_id", r->chapter_id, "chapter_title", jstr_or_null(r->chapter_title),
			 "heading", jstr_or_null(r->heading), "anchor", jstr_or_null(r->anchor), "quote",
			 quote ? quote : "", "score", h->score);
}

/* ---- the extractive answer ------------------------------------------------------- */

/* The answer without a model is the last link of the language-model chain
 * (providers/llm_extractive.c); this is its form for search hits. */
static struct llm_passage *passages_of(struct arena *a, const struct search_hit *hits, int nh)
{
	struct llm_passage *p = arena_alloc(a, sizeof(*p) * (size_t)(nh > 0 ? nh : 1));
	for (int i = 0; p && i < nh; i++)
		p[i].text = hits[i].row.text ? hits[i].row.text : "";
	return p;
}

/* Citations the extractive answerer made: each quote a slice of its passage. */
static int extractive_citations(struct arena *a, const struct llm_result *res, const struct search_hit *hits,
				int nh, json_t *citations)
{
	for (int i = 0; i < res->ncites; i++) {
		int n = res->cites[i].n;
		if (n < 1 || n > nh)
			continue;
		const char *quote = arena_strndup(a, res->cites[i].quote, res->cites[i].quote_len);
		if (!quote || json_array_append_new(citations, citation_json(n, &hits[n - 1], quote)))
			return -1;
	}
	return 0;
}

char *chat_extractive(struct arena *a, const char *question, const struct search_hit *hits, int nh,
		      json_t *citations)
{
	struct llm_result res = { 0 };
	struct err e = { 0 };
	struct llm_passage *p = passages_of(a, hits, nh);
	if (!p || llm_extractive_answer(question, p, nh, &res, &e))
		return NULL;
	if (extractive_citations(a, &res, hits, nh, citations))
		llm_result_free(&res);
	return res.text;
}

/* ---- asking ----------------------------------------------------------------------- */

static const char *SYSTEM_PROMPT =
	"You are the assistant of a book. Answer the reader's question using only the numbered passages "
	"from the book given below. After each statement, cite the passage it comes from with its number "
	"in square brackets, like [1] or [2]. If the passages do not contain the answer, say that the book "
	"does not cover it. If the reader selected text, the question is about that text. Be concise.";

/* English names of common languages, for the prompt; others by their tag. */
static const char *const language_names[][2] = {
	{ "ar", "Arabic" },  { "bn", "Bengali" },   { "de", "German" },	   { "en", "English" },	 { "es", "Spanish" },
	{ "fa", "Persian" }, { "fr", "French" },    { "he", "Hebrew" },	   { "hi", "Hindi" },	 { "id", "Indonesian" },
	{ "it", "Italian" }, { "ja", "Japanese" },  { "ko", "Korean" },	   { "nl", "Dutch" },	 { "pa", "Punjabi" },
	{ "pl", "Polish" },  { "ps", "Pashto" },    { "pt", "Portuguese" }, { "ru", "Russian" }, { "sd", "Sindhi" },
	{ "sw", "Swahili" }, { "ta", "Tamil" },	    { "tr", "Turkish" },   { "uk", "Ukrainian" }, { "ur", "Urdu" },
	{ "vi", "Vietnamese" }, { "zh", "Chinese" },
};

static const char *language_name(const char *tag)
{
	size_t n = strcspn(tag, "-_");
	for (size_t i = 0; i < ARRAY_LEN(language_names); i++)
		if (strlen(language_names[i][0]) == n && !strncasecmp(tag, language_names[i][0], n))
			return language_names[i][1];
	return NULL;
}

static char *build_system(struct arena *a, const struct search_hit *hits, int nh, const char *selection,
			  const char *language)
{
	struct buf b;
	buf_init(&b, (size_t)1 << 20);
	int rc = buf_puts(&b, SYSTEM_PROMPT);
	if (!rc && language) {
		const char *name = language_name(language);
		rc = name ? buf_printf(&b, " Answer in %s (language tag %s).", name, language)
			  : buf_printf(&b, " Answer in the language with the BCP 47 tag %s.", language);
	}
	rc = rc ? rc : buf_puts(&b, "\n\nPassages:\n");
	for (int i = 0; !rc && i < nh; i++) {
		const struct chunk_row *r = &hits[i].row;
		rc = buf_printf(&b, "\n[%d] (%s — %s)\n%s\n", i + 1, r->chapter_title ? r->chapter_title : "",
				r->heading ? r->heading : "", r->text ? r->text : "");
	}
	if (!rc && selection)
		rc = buf_printf(&b, "\nThe reader selected this text:\n\"\"\"\n%s\n\"\"\"\n", selection);
	char *s = rc ? NULL : arena_strndup(a, b.p ? b.p : "", b.n);
	buf_free(&b);
	return s;
}

/* A follow-up question rewritten to stand alone, for retrieval. */
static const char *standalone(struct chat *c, struct arena *a, const struct chat_message *hist, int nh,
			      const char *question, int64_t deadline)
{
	if (!nh || !llm_chain_size(c->llm))
		return question;
	struct buf b;
	buf_init(&b, 64 * 1024);
	int rc = buf_puts(&b, "Conversation so far:\n");
	for (int i = 0; !rc && i < nh; i++)
		rc = buf_printf(&b, "%s: %.*s\n", hist[i].role,
				(int)utf8_prefix(hist[i].content, strlen(hist[i].content), 500), hist[i].content);
	rc = rc ? rc : buf_printf(&b, "\nLast question: %s\n", question);
	struct llm_message m = { "user", b.p ? b.p : "" };
	struct llm_request r = {
		.system = "Rewrite the last question of this conversation as one standalone search query that "
			  "needs no conversation to be understood. Answer with the query only.",
		.messages = &m,
		.nmessages = 1,
		.max_tokens = 80,
		.temperature = 0,
		.deadline_ms = MIN(deadline, time_now_ms() + 10000),
	};
	struct llm_result res;
	struct err e = { 0 };
	const char *out = question;
	if (!rc && llm_complete(c->llm, &r, &res, &e) == 0 && res.text && *res.text && strlen(res.text) < 1000)
		out = arena_strdup(a, res.text);
	else if (e.code)
		log_warn("follow-up rewrite failed (%s); retrieving with the question as asked", e.msg);
	llm_result_free(&res);
	buf_free(&b);
	return out ? out : question;
}

static void today(char day[16])
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(day, 16, "%Y-%m-%d", &tm);
}

/*
 * The daily budget is reserved, then settled: before the model is asked, the
 * question's worst case (its prompt, estimated, and the longest answer) is
 * added to the day's count in one statement that refuses to pass the budget;
 * after, the count is corrected to the tokens really spent (a failed call
 * spends none). Concurrent questions therefore cannot overspend together: each
 * sees the others' reservations.
 */
/* The caller's daily budget: a user's, or an address's for anonymous
 * questions; 0 (none) when no model can spend tokens. */
static long budget_of(const struct chat *c, const struct chat_query *q)
{
	if (!llm_chain_size(c->llm))
		return 0;
	return q->user_id ? c->cfg.daily_tokens : c->cfg.anon_daily_tokens;
}

static int reserve(struct chat *c, const struct chat_query *q, const char *day, int64_t prompt_est,
		   int64_t *reserved, struct err *e)
{
	*reserved = 0;
	long limit = budget_of(c, q);
	if (limit <= 0)
		return 0;
	int64_t want = prompt_est + c->cfg.max_tokens;
	db_conn *conn = NULL;
	int granted = 0;
	int rc = db_acquire(c->db, &conn, e);
	if (rc == 0)
		rc = store_chat_usage_reserve(conn, q->subject, day, want, limit, &granted, e);
	if (rc == 0 && !granted)
		rc = err_set(e, ERR_RATE_LIMITED, "today's chat budget (%ld tokens) has no room for this question",
			     limit);
	if (rc == 0)
		*reserved = want;
	db_release(conn);
	return rc;
}

/* Corrects the day's count by `delta` outside an answer's transaction. */
static void settle(struct chat *c, const char *subject, const char *day, int64_t delta)
{
	db_conn *conn = NULL;
	struct err e = { 0 };
	if (db_acquire(c->db, &conn, &e) == 0 && store_chat_usage_add(conn, subject, day, delta, &e) == 0)
		err_clear(&e);
	if (e.code)
		log_warn("chat: settling the daily budget of %s: %s", subject, e.msg);
	db_release(conn);
}

static json_t *passages_json(const struct search_hit *hits, int nh)
{
	json_t *arr = json_array();
	for (int i = 0; i < nh; i++)
		json_array_append_new(arr, citation_json(i + 1, &hits[i], NULL));
	return arr;
}

int chat_ask(struct chat *c, struct arena *a, const struct chat_query *q, struct chat_answer *out, struct err *e)
{
	memset(out, 0, sizeof(*out));
	int64_t t0 = time_now_ms(), deadline = t0 + (int64_t)c->cfg.deadline_s * 1000;
	struct chat_session session;
	struct chat_message *hist = NULL;
	int nhist = 0, rc;
	char **ctx_texts = NULL, **ctx_chapters = NULL;
	int nctx = 0;
	/* The day's budget: tokens reserved before the model is asked, and the
	 * tokens really spent, which the reservation is settled to. */
	int64_t reserved = 0, spent = 0;
	int settled = 0;
	char day[16];
	today(day);
	db_conn *conn = NULL;
	long limit = budget_of(c, q);
	/* A new conversation with no budget to check asks the database nothing. */
	int fresh = !q->session_id;
	if ((!fresh || limit > 0) && (rc = db_acquire(c->db, &conn, e)) != 0)
		return rc;
	if (limit > 0) {
		int64_t used = 0;
		if ((rc = store_chat_usage_get(conn, q->subject, day, &used, e)) != 0)
			goto out;
		if (used >= limit) {
			rc = err_set(e, ERR_RATE_LIMITED, "today's chat budget (%ld tokens) is spent", limit);
			goto out;
		}
	}
	/* A session id unknown to this caller is a key it minted: a new session. */
	if (!fresh && (rc = session_for(c, conn, a, q->user_id, q->session_id, &session, e)) == ERR_NOT_FOUND) {
		err_clear(e);
		fresh = 1;
	}
	if (fresh)
		rc = new_session(q->user_id, q->book_id, q->session_id, &session, e);
	else if (rc == 0 && (rc = store_chat_recent(conn, a, session.id, c->cfg.history_messages, &hist, &nhist, e)) == 0)
		rc = store_chat_contexts(conn, a, session.id, 1, &ctx_texts, &ctx_chapters, &nctx, e);
	if (rc)
		goto out;
	db_release(conn);
	conn = NULL;

	/* Memory: the newest messages that fit the token budget. */
	int first = nhist, budget = c->cfg.history_tokens;
	while (first > 0 && (budget -= tokens_of(hist[first - 1].content)) >= 0)
		first--;
	hist += first;
	nhist -= first;

	const char *selection = q->selected_text ? q->selected_text : nctx ? ctx_texts[0] : NULL;
	const char *focus = q->chapter_id ? q->chapter_id : (!q->selected_text && nctx) ? ctx_chapters[0] : NULL;
	const char *query = standalone(c, a, hist, nhist, q->question, deadline);
	if (selection)
		query = arena_printf(a, "%s %.*s", query,
				     (int)utf8_prefix(selection, strlen(selection), SELECTION_IN_QUERY), selection);
	struct search_hit *hits = NULL;
	int nh = 0;
	int k = q->top_k > 0 ? q->top_k : c->cfg.top_k;
	if (k > MAX_PASSAGES)
		k = MAX_PASSAGES;
	struct err se = { 0 };
	/* In the reader's language: its translation's passages, else the book's own text. */
	if (q->language && search_query_lang(c->search, a, query ? query : q->question, q->book_id, focus, q->language,
					     k, SEARCH_DEFAULT, &hits, &nh, &se)) {
		log_warn("chat retrieval in %s failed: %s", q->language, se.msg);
		err_clear(&se);
		nh = 0;
	}
	if (nh == 0 && search_query(c->search, a, query ? query : q->question, q->book_id, focus, k, SEARCH_DEFAULT,
				    &hits, &nh, &se)) {
		log_warn("chat retrieval failed: %s", se.msg);
		nh = 0;
	}
	if (q->on_passages) {
		json_t *p = passages_json(hits, nh);
		int stop = q->on_passages(q->ctx, p);
		json_decref(p);
		if (stop) {
			rc = err_set(e, ERR_UNAVAILABLE, "cancelled");
			goto out;
		}
	}

	/* The model: history, then the question (the selection is in the system prompt, verbatim). */
	struct llm_message *msgs = arena_alloc(a, sizeof(*msgs) * (size_t)(nhist + 1));
	char *system = build_system(a, hits, nh, selection, q->language);
	if (!msgs || !system) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	int64_t prompt_est = (int64_t)tokens_of(system) + tokens_of(q->question);
	for (int i = 0; i < nhist; i++)
		prompt_est += tokens_of(hist[i].content);
	if ((rc = reserve(c, q, day, prompt_est, &reserved, e)) != 0)
		goto out;
	int nm = 0;
	for (int i = 0; i < nhist; i++)
		if (!strcmp(hist[i].role, "user") || !strcmp(hist[i].role, "assistant"))
			msgs[nm++] = (struct llm_message){ hist[i].role, hist[i].content };
	msgs[nm++] = (struct llm_message){ "user", q->question };
	struct llm_request req = { .system = system,
				   .messages = msgs,
				   .nmessages = nm,
				   .max_tokens = c->cfg.max_tokens,
				   .temperature = 0.2,
				   .stream = q->on_delta != NULL,
				   .on_delta = q->on_delta,
				   .cancelled = q->cancelled,
				   .ctx = q->ctx,
				   .deadline_ms = deadline,
				   .passages = passages_of(a, hits, nh),
				   .npassages = nh,
				   .question = q->question };
	struct llm_result res = { 0 };
	struct err le = { 0 };
	out->citations = json_array();
	int llm_rc = req.passages ? llm_complete(c->llm, &req, &res, &le) : err_set(&le, ERR_INTERNAL, "out of memory");
	if (llm_rc == 0 && res.extractive) {
		out->answer = extractive_citations(a, &res, hits, nh, out->citations) ? NULL : xstrdup(res.text);
		snprintf(out->provider, sizeof(out->provider), "%s", res.provider);
		snprintf(out->model, sizeof(out->model), "%s", res.model);
	} else if (llm_rc == 0) {
		int cited[MAX_PASSAGES], ncited;
		out->answer = chat_clean_markers(res.text, nh, cited, &ncited);
		for (int i = 0; out->answer && i < ncited; i++)
			if (json_array_append_new(out->citations,
						  citation_json(cited[i], &hits[cited[i] - 1],
								quote_from(a, hits[cited[i] - 1].row.text, out->answer)))) {
				xfree(out->answer); /* a citation lost is no answer to store */
				out->answer = NULL;
			}
		snprintf(out->provider, sizeof(out->provider), "%s", res.provider);
		snprintf(out->model, sizeof(out->model), "%s", res.model);
		out->prompt_tokens = res.prompt_tokens ? res.prompt_tokens : tokens_of(system) + tokens_of(q->question);
		out->completion_tokens = res.completion_tokens;
	} else if (res.delivered) {
		/* The reader saw the start of an answer that then broke off (or
		 * left): what the model was given and what it wrote is spent. */
		out->answer = xstrdup("");
		out->broken = 1;
		out->prompt_tokens = res.prompt_tokens ? res.prompt_tokens : (int)prompt_est;
		out->completion_tokens = res.completion_tokens ? res.completion_tokens : (int)((res.delivered + 3) / 4);
		snprintf(out->provider, sizeof(out->provider), "%s", res.provider[0] ? res.provider : "unknown");
		log_warn("chat: the answer broke off: %s", le.msg);
	} else {
		if (res.cancelled || (q->cancelled && q->cancelled(q->ctx))) {
			/* A model was asked: leaving before its first word does not
			 * make the question free. */
			spent = prompt_est;
			llm_result_free(&res);
			rc = err_set(e, ERR_UNAVAILABLE, "cancelled");
			goto out;
		}
		/* The chain ends with the extractive answerer: only a local failure
		 * (out of memory) gets here. */
		log_warn("chat: no answer: %s", le.msg);
	}
	llm_result_free(&res);
	spent = (int64_t)out->prompt_tokens + out->completion_tokens;
	if (!out->answer) {
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}

	/* Remember the exchange. */
	out->timestamp = time_now_ms();
	out->latency_ms = out->timestamp - t0;
	/* The reply names the session as the client did: its key is never replaced. */
	snprintf(out->session_id, sizeof(out->session_id), "%s", q->session_id ? q->session_id : session.id);
	struct chat_message um = { 0 }, am = { 0 };
	char *cit = json_dumps(out->citations, JSON_COMPACT);
	if (uuid_v7(um.id) || uuid_v7(am.id) || !cit) {
		free(cit);
		rc = err_set(e, ERR_INTERNAL, "out of memory");
		goto out;
	}
	um.role = "user";
	um.content = (char *)q->question;
	um.selected_text = (char *)q->selected_text;
	um.created_at = t0;
	am.role = "assistant";
	am.content = out->answer;
	am.citations = cit;
	am.provider = out->provider;
	am.model = out->model;
	am.prompt_tokens = out->prompt_tokens;
	am.completion_tokens = out->completion_tokens;
	am.latency_ms = out->latency_ms;
	am.created_at = out->timestamp;
	memcpy(out->message_id, am.id, sizeof(out->message_id));
	char title[96];
	size_t tl = utf8_prefix(q->question, strlen(q->question), 80);
	memcpy(title, q->question, tl);
	title[tl] = '\0';
	/* What is stored must serialise: checked before, not found after. */
	json_t *whole = chat_answer_json(out);
	if (!whole) {
		free(cit);
		rc = err_set(e, ERR_INTERNAL, "the answer could not be encoded");
		goto out;
	}
	json_decref(whole);
	if (out->broken) {
		/* Nothing worth remembering but the session, whose id the reader
		 * has: its failure to be stored is no reason to fail the answer. */
		free(cit);
		if (fresh && db_acquire(c->db, &conn, e) == 0 && store_session(conn, a, &session, e))
			log_warn("chat: storing the session of a broken answer: %s", e->msg);
		err_clear(e);
		goto out;
	}
	if ((rc = db_acquire(c->db, &conn, e)) == 0 && (rc = db_begin(conn, e)) == 0) {
		if (fresh)
			rc = store_session(conn, a, &session, e);
		memcpy(um.session_id, session.id, sizeof(um.session_id));
		memcpy(am.session_id, session.id, sizeof(am.session_id));
		rc = rc ? rc : store_chat_message_insert(conn, &um, e);
		rc = rc ? rc : store_chat_message_insert(conn, &am, e);
		rc = rc ? rc : store_chat_session_touch(conn, session.id, title, out->timestamp, e);
		if (!rc && limit > 0)
			rc = store_chat_usage_add(conn, q->subject, day, spent - reserved, e);
		rc = rc ? rc : db_commit(conn, e);
		if (rc)
			db_rollback(conn);
		else
			settled = 1;
	}
	free(cit);
out:
	db_release(conn);
	if (limit > 0 && reserved && !settled)
		settle(c, q->subject, day, spent - reserved);
	if (rc)
		chat_answer_free(out);
	return rc;
}

void chat_answer_free(struct chat_answer *a)
{
	xfree(a->answer);
	a->answer = NULL;
	json_decref(a->citations);
	a->citations = NULL;
}

json_t *chat_answer_json(const struct chat_answer *a)
{
	char ts[32];
	time_format_rfc3339(a->timestamp, ts);
	return json_pack("{s:s, s:s, s:s, s:O, s:s, s:s, s:{s:i, s:i, s:i}, s:s, s:I}", "answer", a->answer,
			 "session_id", a->session_id, "message_id", a->message_id, "citations", a->citations,
			 "provider", a->provider, "model", a->model, "usage", "prompt_tokens", a->prompt_tokens,
			 "completion_tokens", a->completion_tokens, "total_tokens",
			 a->prompt_tokens + a->completion_tokens, "timestamp", ts, "latency_ms",
			 (json_int_t)a->latency_ms);
}

int chat_add_context(struct chat *c, struct arena *a, const char *user_id, const char *session_id, const char *text,
		     const char *book_id, const char *chapter_id, char session_out[CHAT_KEY_MAX + 1],
		     char context_id[UUID_STR_LEN], struct err *e)
{
	db_conn *conn;
	int rc = db_acquire(c->db, &conn, e);
	if (rc)
		return rc;
	struct chat_session s;
	if ((rc = db_begin(conn, e)) != 0)
		goto out;
	if (session_id && (rc = session_for(c, conn, a, user_id, session_id, &s, e)) == ERR_NOT_FOUND)
		err_clear(e);
	if ((!session_id || rc == ERR_NOT_FOUND) && (rc = new_session(user_id, book_id, session_id, &s, e)) == 0)
		rc = store_session(conn, a, &s, e);
	if (rc == 0 && uuid_v7(context_id))
		rc = err_set(e, ERR_INTERNAL, "no randomness");
	if (rc == 0)
		rc = store_chat_context_insert(conn, context_id, s.id, text, book_id, chapter_id, time_now_ms(), e);
	rc = rc ? rc : db_commit(conn, e);
	if (rc)
		db_rollback(conn);
	else
		snprintf(session_out, CHAT_KEY_MAX + 1, "%s", session_id ? session_id : s.id);
out:
	db_release(conn);
	return rc;
}

int chat_sessions(struct chat *c, struct arena *a, const char *user_id, const char *cursor, int limit,
		  struct chat_session **items, int *n, char **next, struct err *e)
{
	*next = NULL;
	if (cursor && !uuid_valid(cursor, strlen(cursor)))
		return err_set(e, ERR_INVALID, "cursor is not valid");
	db_conn *conn;
	int rc = db_acquire(c->db, &conn, e);
	if (rc)
		return rc;
	rc = store_chat_session_list(conn, a, user_id, cursor, limit + 1, items, n, e);
	db_release(conn);
	if (rc == 0 && *n > limit) {
		*n = limit;
		*next = arena_strdup(a, (*items)[limit - 1].id);
	}
	return rc;
}

int chat_session(struct chat *c, struct arena *a, const char *user_id, const char *id, struct chat_session *out,
		 struct err *e)
{
	db_conn *conn;
	int rc = db_acquire(c->db, &conn, e);
	if (rc)
		return rc;
	rc = session_for(c, conn, a, user_id, id, out, e);
	db_release(conn);
	return rc;
}

int chat_session_delete(struct chat *c, const char *user_id, const char *id, struct err *e)
{
	struct arena a;
	arena_init(&a, 1024);
	db_conn *conn;
	int rc = db_acquire(c->db, &conn, e);
	if (rc == 0) {
		struct chat_session s;
		rc = session_for(c, conn, &a, user_id, id, &s, e);
		if (rc == 0)
			rc = store_chat_session_delete(conn, s.id, e);
		db_release(conn);
	}
	arena_free(&a);
	return rc;
}

int chat_messages(struct chat *c, struct arena *a, const char *user_id, const char *id, const char *cursor,
		  int limit, struct chat_message **items, int *n, char **next, struct err *e)
{
	*next = NULL;
	if (cursor && !uuid_valid(cursor, strlen(cursor)))
		return err_set(e, ERR_INVALID, "cursor is not valid");
	db_conn *conn;
	int rc = db_acquire(c->db, &conn, e);
	if (rc)
		return rc;
	struct chat_session s;
	rc = session_for(c, conn, a, user_id, id, &s, e);
	if (rc == 0)
		rc = store_chat_messages(conn, a, s.id, cursor, limit + 1, items, n, e);
	db_release(conn);
	if (rc == 0 && *n > limit) {
		*n = limit;
		*next = arena_strdup(a, (*items)[limit - 1].id);
	}
	return rc;
}

int chat_history(struct chat *c, struct arena *a, const char *user_id, const char *id, int limit,
		 struct chat_message **items, int *n, struct err *e)
{
	*items = NULL;
	*n = 0;
	db_conn *conn;
	int rc = db_acquire(c->db, &conn, e);
	if (rc)
		return rc;
	struct chat_session s;
	rc = session_for(c, conn, a, user_id, id, &s, e);
	if (rc == 0)
		rc = store_chat_recent(conn, a, s.id, limit, items, n, e);
	else if (rc == ERR_NOT_FOUND) /* a key not used yet: a conversation with nothing in it */
		rc = 0, err_clear(e);
	db_release(conn);
	return rc;
}

int chat_feedback_put(struct chat *c, struct arena *a, const char *user_id, const char *rater, const char *message_id,
		      int rating, const char *comment, char id_out[UUID_STR_LEN], struct err *e)
{
	if (!uuid_valid(message_id, strlen(message_id)))
		return err_set(e, ERR_NOT_FOUND, "message not found");
	db_conn *conn;
	int rc = db_acquire(c->db, &conn, e);
	if (rc)
		return rc;
	struct chat_answer_ref ref;
	struct chat_session owner = { 0 };
	rc = store_chat_message_ref(conn, a, message_id, &ref, e);
	owner.user_id = rc == 0 ? ref.user_id : NULL;
	/* Only an answer, and only in the rater's own conversations. */
	if (rc == 0 && (strcmp(ref.role, "assistant") || !owns(&owner, user_id)))
		rc = err_set(e, ERR_NOT_FOUND, "message not found");
	struct chat_feedback f = { .user_id = (char *)user_id, .rating = rating, .comment = (char *)comment,
				   .created_at = time_now_ms() };
	snprintf(f.message_id, sizeof(f.message_id), "%s", message_id);
	if (rc == 0 && uuid_v7(f.id))
		rc = err_set(e, ERR_INTERNAL, "no randomness");
	if (rc == 0)
		rc = store_chat_feedback_put(conn, &f, rater, e);
	if (rc == 0)
		memcpy(id_out, f.id, UUID_STR_LEN);
	db_release(conn);
	return rc;
}

int chat_feedback_list(struct chat *c, struct arena *a, const char *cursor, int limit, struct chat_feedback **items,
		       int *n, char **next, struct err *e)
{
	*next = NULL;
	if (cursor && !uuid_valid(cursor, strlen(cursor)))
		return err_set(e, ERR_INVALID, "cursor is not valid");
	db_conn *conn;
	int rc = db_acquire(c->db, &conn, e);
	if (rc)
		return rc;
	rc = store_chat_feedback_list(conn, a, cursor, limit + 1, items, n, e);
	db_release(conn);
	if (rc == 0 && *n > limit) {
		*n = limit;
		*next = arena_strdup(a, (*items)[limit - 1].id);
	}
	return rc;
}
