/* Allocation failure reaching services and store: each operation (opening
 * and migrating a database, creating a book and its chapters, indexing,
 * searching, asking the chatbot, storing reading context) is run with its
 * k-th allocation failing, for k = 0, 1, 2, … until it succeeds (or, for
 * those that can run again, for every allocation of a run). Every run
 * must end in a clean error (never a crash; no leak under ASan) and leave the
 * database consistent: no half-stored exchange, no session without one. */
#include "unit.h"

#include <unistd.h>

#include "core/config.h"
#include "core/mem.h"
#include "services/books.h"
#include "services/chat.h"
#include "services/search.h"
#include "store/db.h"

#define MAX_K 20000

static char path[64];
static db *d;
static struct search *srch;
static struct llm_chain *llm;
static struct chat *chat;
static char book_id[UUID_STR_LEN];

static void remove_db(void)
{
	char p[96];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static int64_t count(const char *sql)
{
	db_conn *c;
	struct err e = { 0 };
	int64_t n = -1;
	assert_int_equal(db_acquire(d, &c, &e), 0);
	assert_true(db_run_sql(c, sql, NULL, 0, db_row_first_int, &n, NULL, &e) >= 0);
	db_release(c);
	return n;
}

/* The chat tables are consistent: every session holds whole exchanges. */
static void check_chat_consistent(void)
{
	assert_int_equal(count("SELECT count(*) FROM chat_sessions s WHERE NOT EXISTS "
			       "(SELECT 1 FROM chat_messages m WHERE m.session_id = s.id) AND NOT EXISTS "
			       "(SELECT 1 FROM chat_contexts x WHERE x.session_id = s.id)"),
			 0);
	assert_int_equal(count("SELECT count(*) FROM chat_messages WHERE role = 'user'"),
			 count("SELECT count(*) FROM chat_messages WHERE role = 'assistant'"));
}

static void check_failed_cleanly(const char *what, int k, int rc, const struct err *e)
{
	if (rc > 0 || (rc < 0 && !e->code)) {
		print_error("%s, allocation %d failing: rc %d with no error set\n", what, k, rc);
		fail();
	}
}

/* Runs op with its k-th allocation failing until it succeeds; returns how
 * many runs failed. `check` runs after every failed run. */
static int until_ok(const char *what, int (*op)(void *ctx, struct err *e), void *ctx, void (*check)(void))
{
	int k;
	for (k = 0; k < MAX_K; k++) {
		struct err e = { 0 };
		mem_fail_after(k);
		int rc = op(ctx, &e);
		mem_fail_after(-1);
		if (rc == 0)
			break;
		check_failed_cleanly(what, k, rc, &e);
		if (check)
			check();
	}
	if (k == MAX_K) {
		print_error("%s never succeeded\n", what);
		fail();
	}
	return k;
}

/* For an operation that may run many times: counts its allocations in a run
 * that fails none, then fails each of them in turn (a failure the operation
 * recovers from is a success). Returns how many runs failed. */
static int each_allocation(const char *what, int (*op)(void *ctx, struct err *e), void *ctx, void (*check)(void))
{
	const long armed = 1L << 40;
	struct err e = { 0 };
	mem_fail_after(armed);
	int rc = op(ctx, &e);
	long n = armed - mem_fail_after(-1);
	if (rc) {
		print_error("%s fails with no allocation failing: %s\n", what, e.msg);
		fail();
	}
	int failed = 0;
	for (long k = 0; k < n; k++) {
		err_clear(&e);
		mem_fail_after(k);
		rc = op(ctx, &e);
		mem_fail_after(-1);
		check_failed_cleanly(what, (int)k, rc, &e);
		failed += rc != 0;
		if (check)
			check();
	}
	print_message("%s: %ld allocations, %d runs failed cleanly\n", what, n, failed);
	return failed;
}

/* ---- operations ---------------------------------------------------------------- */

static int op_open(void *ctx, struct err *e)
{
	(void)ctx;
	remove_db();
	char url[80];
	snprintf(url, sizeof(url), "sqlite:%s", path);
	db *x = NULL;
	int version = 0;
	int rc = db_open(&x, url, 4, e);
	if (rc == 0)
		rc = db_migrate(x, &version, e);
	if (x)
		db_close(x);
	return rc;
}

static int op_book(void *ctx, struct err *e)
{
	(void)ctx;
	struct arena a;
	arena_init(&a, 4096);
	struct book_input in = { .set = BF_TITLE | BF_AUTHOR, .title = "Walking Robots", .author = "Ada" };
	struct book b;
	int rc = books_create(d, &a, &in, &b, e);
	if (rc == 0)
		snprintf(book_id, sizeof(book_id), "%s", b.id);
	arena_free(&a);
	return rc;
}

static const char *CHAPTER_MD[] = {
	"# Balance\n\nThe zero moment point is the point where the net moment of the contact forces vanishes. "
	"A robot stays upright while the zero moment point lies inside the support polygon.\n\n"
	"## History\n\nVukobratović introduced the zero moment point in 1968. Café owners never heard of it.\n",
	"# Gaits\n\nA gait is a pattern of steps. Quadrupeds trot, pace and gallop; bipeds walk and run.\n\n"
	"- Static walking keeps the centre of mass over the support polygon.\n"
	"- Dynamic walking lets it leave, and catches it with the next step.\n",
};

static int op_chapter(void *ctx, struct err *e)
{
	int i = *(int *)ctx;
	struct arena a;
	arena_init(&a, 4096);
	struct chapter_input in = { .title = i ? "Gaits" : "Balance", .content = CHAPTER_MD[i],
				    .content_len = strlen(CHAPTER_MD[i]), .number = i + 1 };
	struct chapter ch;
	int rc = chapters_create(d, &a, book_id, &in, &ch, e);
	arena_free(&a);
	return rc;
}

static void check_chapters(void)
{
	/* a chapter is stored whole or not at all, and the second never without the first */
	assert_in_range(count("SELECT count(*) FROM chapters"), 0, 2);
}

static int op_index(void *ctx, struct err *e)
{
	(void)ctx;
	struct index_stats st = { 0 };
	return search_index_book(srch, book_id, NULL, NULL, &st, e);
}

static int op_search(void *ctx, struct err *e)
{
	(void)ctx;
	struct arena a;
	arena_init(&a, 4096);
	struct search_hit *hits = NULL;
	int n = 0;
	int rc = search_query(srch, &a, "zero moment point", book_id, NULL, 5, SEARCH_KEYWORD, &hits, &n, e);
	if (rc == 0 && n == 0)
		rc = err_set(e, ERR_INTERNAL, "nothing found");
	arena_free(&a);
	return rc;
}

struct ask_ctx {
	const char *session_id;
	const char *selected;
	char session_out[CHAT_KEY_MAX + 1];
};

static int op_ask(void *ctx, struct err *e)
{
	struct ask_ctx *x = ctx;
	struct arena a;
	arena_init(&a, 8192);
	struct chat_query q = { .user_id = NULL,
				.subject = "ip:127.0.0.1",
				.question = "Who introduced the zero moment point?",
				.session_id = x->session_id,
				.selected_text = x->selected,
				.book_id = book_id };
	struct chat_answer ans;
	int rc = chat_ask(chat, &a, &q, &ans, e);
	if (rc == 0) {
		json_t *j = chat_answer_json(&ans);
		if (!j) /* an allocation in jansson: not ours to fail */
			rc = err_set(e, ERR_INTERNAL, "encoding the answer");
		json_decref(j);
		snprintf(x->session_out, sizeof(x->session_out), "%s", ans.session_id);
		chat_answer_free(&ans);
	}
	arena_free(&a);
	return rc;
}

static int op_context(void *ctx, struct err *e)
{
	struct ask_ctx *x = ctx;
	struct arena a;
	arena_init(&a, 4096);
	char sid[CHAT_KEY_MAX + 1], cid[UUID_STR_LEN];
	int rc = chat_add_context(chat, &a, NULL, x->session_id, "The support polygon.", book_id, NULL, sid, cid, e);
	arena_free(&a);
	return rc;
}

static int op_history(void *ctx, struct err *e)
{
	struct ask_ctx *x = ctx;
	struct arena a;
	arena_init(&a, 4096);
	struct chat_message *items;
	int n;
	char *next;
	int rc = chat_messages(chat, &a, NULL, x->session_id, NULL, 10, &items, &n, &next, e);
	if (rc == 0 && n < 2)
		rc = err_set(e, ERR_INTERNAL, "history lost");
	arena_free(&a);
	return rc;
}

/* ---- the test ------------------------------------------------------------------- */

static void test_allocation_failures_end_in_clean_errors(void **state)
{
	(void)state;
	struct err e = { 0 };
	int runs = until_ok("open and migrate", op_open, NULL, NULL);
	assert_true(runs > 0);

	char url[80];
	snprintf(url, sizeof(url), "sqlite:%s", path);
	int version;
	assert_int_equal(db_open(&d, url, 4, &e), 0);
	assert_int_equal(db_migrate(d, &version, &e), 0);
	struct search_config sc = { .chunk_tokens = 64, .embed = NULL, .sync_ms = 1000 };
	unsetenv("BOOKD_LLM_PROVIDERS");
	struct config cfg;
	char msg[512];
	assert_int_equal(config_load(&cfg, "/nonexistent/.env", msg, sizeof(msg)), 0);
	assert_int_equal(search_new(&srch, d, &sc, &e), 0);
	assert_int_equal(llm_chain_new(&llm, &cfg, NULL, &e), 0); /* the extractive answerer alone */
	struct chat_config cc = { .history_messages = 10, .history_tokens = 2000, .top_k = 3, .deadline_s = 10,
				  .max_tokens = 200, .daily_tokens = 1 << 30 };
	assert_int_equal(chat_new(&chat, d, srch, llm, &cc, &e), 0);

	(void)until_ok("create a book", op_book, NULL, NULL);
	assert_int_equal(count("SELECT count(*) FROM books"), 1);
	for (int i = 0; i < 2; i++) {
		runs = until_ok("create a chapter", op_chapter, &i, check_chapters);
		assert_true(runs > 0); /* the Markdown analysis allocates */
	}
	assert_int_equal(count("SELECT count(*) FROM chapters"), 2);
	runs = each_allocation("index the book", op_index, NULL, NULL);
	assert_true(runs > 0);
	runs = each_allocation("search", op_search, NULL, NULL);
	assert_true(runs > 0);

	struct ask_ctx x = { 0 };
	runs = each_allocation("ask a first question", op_ask, &x, check_chat_consistent);
	assert_true(runs > 0);
	assert_true(count("SELECT count(*) FROM chat_messages") >= 2);
	struct ask_ctx follow = { .session_id = x.session_out, .selected = "the support polygon" };
	runs = each_allocation("store reading context", op_context, &follow, check_chat_consistent);
	assert_true(runs > 0);
	runs = each_allocation("ask a follow-up", op_ask, &follow, check_chat_consistent);
	assert_true(runs > 0);
	runs = each_allocation("read the history", op_history, &follow, NULL);
	assert_true(runs > 0);
	check_chat_consistent();

	chat_free(chat);
	llm_chain_free(llm);
	config_free(&cfg);
	search_free(srch);
	db_close(d);
}

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/bookd-test-alloc-%d.db", (int)getpid());
	remove_db();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	mem_fail_after(-1);
	remove_db();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_allocation_failures_end_in_clean_errors),
	};
	return cmocka_run_group_tests_name("alloc", tests, setup, teardown);
}
