/* bookd_bm25() against FTS5's own bm25(): the same scores for the phrases it
 * is told to score, whatever else the MATCH expression holds. */
#include "unit.h"

#include <math.h>
#include <sqlite3.h>

#include "store/sqlite_rank.h"

static sqlite3 *h;

static const char *const WORDS[] = { "robot", "balance", "walking", "zero", "moment", "point", "the", "of",
				     "sensor", "motor", "spring", "control", "model", "learning", "arm", "grasp" };
#define NWORDS (sizeof(WORDS) / sizeof(WORDS[0]))

static unsigned seed = 12345;
static unsigned next(void)
{
	seed = seed * 1103515245u + 12345u;
	return (seed >> 16) & 0x7fff;
}

/* A word, common ones more often: the first few are in most rows. */
static const char *word(void)
{
	unsigned r = next() % 100;
	return WORDS[r < 50 ? r % 4 : r % NWORDS];
}

static int setup(void **state)
{
	(void)state;
	if (sqlite3_open(":memory:", &h) != SQLITE_OK || sqlite_rank_register(h))
		return -1;
	if (sqlite3_exec(h, "CREATE VIRTUAL TABLE t USING fts5(head, body, scope, tokenize='porter unicode61')", NULL,
			 NULL, NULL) != SQLITE_OK)
		return -1;
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(h, "INSERT INTO t (head, body, scope) VALUES (?1, ?2, ?3)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	for (int row = 0; row < 300; row++) {
		char head[128] = "", body[2048] = "";
		int nh = 1 + (int)(next() % 4), nb = 5 + (int)(next() % 120);
		for (int i = 0; i < nh; i++)
			snprintf(head + strlen(head), sizeof(head) - strlen(head), "%s ", word());
		for (int i = 0; i < nb; i++)
			snprintf(body + strlen(body), sizeof(body) - strlen(body), "%s ", word());
		sqlite3_bind_text(st, 1, head, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 2, body, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(st, 3, row % 2 ? "bodd" : "beven", -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			return -1;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sqlite3_close(h);
	return 0;
}

static long long df_of(const char *term)
{
	char q[256];
	snprintf(q, sizeof(q), "SELECT count(*) FROM t WHERE t MATCH '{head body} : \"%s\"'", term);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(h, q, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	long long n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Every row of `match`: bookd_bm25 over `terms` equals -bm25() of `plain`
 * (the same terms with nothing else) on that row. Returns the rows seen. */
static int compare(const char *const *terms, int nt, const char *filter)
{
	char plain[512], match[768], dfs[256] = "";
	int n = snprintf(plain, sizeof(plain), "{head body} : (");
	for (int i = 0; i < nt; i++) {
		n += snprintf(plain + n, sizeof(plain) - (size_t)n, "%s\"%s\"", i ? " OR " : "", terms[i]);
		snprintf(dfs + strlen(dfs), sizeof(dfs) - strlen(dfs), "%lld ", df_of(terms[i]));
	}
	snprintf(plain + n, sizeof(plain) - (size_t)n, ")");
	snprintf(match, sizeof(match), "%s%s%s", plain, filter ? " AND " : "", filter ? filter : "");

	char sql[2048];
	snprintf(sql, sizeof(sql),
		 "SELECT m.rowid, m.s, p.s FROM "
		 "(SELECT rowid, bookd_bm25(t, '2 1 0', '%s') AS s FROM t WHERE t MATCH '%s') m "
		 "JOIN (SELECT rowid, -bm25(t, 2.0, 1.0, 0.0) AS s FROM t WHERE t MATCH '%s') p ON p.rowid = m.rowid",
		 dfs, match, plain);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	int rows = 0, rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		double mine = sqlite3_column_double(st, 1), fts = sqlite3_column_double(st, 2);
		if (fabs(mine - fts) > 1e-9 * (1 + fabs(fts)))
			fail_msg("row %lld: bookd_bm25 %.12f, bm25 %.12f (%s)", (long long)sqlite3_column_int64(st, 0),
				 mine, fts, match);
		rows++;
	}
	assert_int_equal(rc, SQLITE_DONE);
	sqlite3_finalize(st);
	return rows;
}

static void test_equals_fts5_bm25(void **state)
{
	(void)state;
	const char *one[] = { "motor" };
	const char *two[] = { "robot", "grasp" };
	const char *many[] = { "the", "of", "walking", "spring", "control" };
	assert_true(compare(one, 1, NULL) > 0);
	assert_true(compare(two, 2, NULL) > 0);
	assert_true(compare(many, 5, NULL) > 100);
}

/* Filter phrases after the scored ones (rare terms, scope terms) change
 * which rows match, never a row's score. */
static void test_filter_phrases_do_not_score(void **state)
{
	(void)state;
	const char *many[] = { "the", "of", "walking", "spring", "control" };
	int all = compare(many, 5, NULL);
	int some = compare(many, 5, "{head body} : (\"spring\" OR \"control\")");
	int scoped = compare(many, 5, "{head body} : (\"spring\") AND scope : \"bodd\"");
	assert_true(some > 0 && some < all);
	assert_true(scoped > 0 && scoped < some);
}

static void test_bad_arguments_are_errors(void **state)
{
	(void)state;
	const char *bad[] = { "SELECT bookd_bm25(t, '2 x', '1') FROM t WHERE t MATCH 'robot'",
			      "SELECT bookd_bm25(t, '2 1 0', '1 2 3') FROM t WHERE t MATCH 'robot'",
			      "SELECT bookd_bm25(t, '2 1 0') FROM t WHERE t MATCH 'robot'" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sqlite3_stmt *st;
		assert_int_equal(sqlite3_prepare_v2(h, bad[i], -1, &st, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ERROR);
		sqlite3_finalize(st);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_equals_fts5_bm25),
		cmocka_unit_test(test_filter_phrases_do_not_score),
		cmocka_unit_test(test_bad_arguments_are_errors),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
