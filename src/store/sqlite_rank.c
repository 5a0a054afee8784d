/*
 * bookd_bm25(): BM25 for an FTS5 table, as FTS5's own bm25() computes it
 * (k1 = 1.2, b = 0.75, a weight per column, IDF clamped to 1e-6 for terms in
 * half the rows or more), with two differences that let a query be cut short:
 *
 *   bookd_bm25(fts_table, 'w1 w2 ...', 'df1 df2 ...')
 *
 * - Only the first n phrases of the MATCH expression score, n being the
 *   number of document frequencies given; phrases after them only filter
 *   rows ("... AND (rare terms)"), where bm25() would count them twice.
 * - The document frequencies are the caller's (counted once and cached)
 *   rather than counted here on every query, which reads each phrase's whole
 *   list of rows before the first result.
 *
 * The result is the score itself, higher is better (bm25() negates it).
 */
#include "sqlite_rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RANK_MAX_COLS 8
#define BM25_K1 1.2
#define BM25_B 0.75

struct rank {
	int ncols, nphrases;
	double weight[RANK_MAX_COLS];
	double idf[RANK_MAX_PHRASES];
	double avgdl;
};

/* Up to max numbers from a space-separated list; -1 on anything else. */
static int numbers(const char *s, double *out, int max)
{
	int n = 0;
	while (s && *s) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		char *end;
		double v = strtod(s, &end);
		if (end == s || n == max || !isfinite(v) || v < 0)
			return -1;
		out[n++] = v;
		s = end;
	}
	return n;
}

/* What is the same for every row of the statement: read at its first row. */
static struct rank *prepare(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_value **argv, const char **why)
{
	struct rank *r = sqlite3_malloc(sizeof(*r));
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	double df[RANK_MAX_PHRASES];
	sqlite3_int64 nrow = 0, ntok = 0;
	r->ncols = numbers((const char *)sqlite3_value_text(argv[0]), r->weight, RANK_MAX_COLS);
	r->nphrases = numbers((const char *)sqlite3_value_text(argv[1]), df, RANK_MAX_PHRASES);
	if (r->ncols < 0 || r->nphrases < 0 || r->nphrases > api->xPhraseCount(fts))
		*why = "bookd_bm25: bad weights or frequencies";
	else if (api->xRowCount(fts, &nrow) != SQLITE_OK || api->xColumnTotalSize(fts, -1, &ntok) != SQLITE_OK)
		*why = "bookd_bm25: cannot read the table's totals";
	if (*why) {
		sqlite3_free(r);
		return NULL;
	}
	double n = (double)nrow;
	r->avgdl = nrow > 0 && ntok > 0 ? (double)ntok / n : 1.0;
	for (int i = 0; i < r->nphrases; i++)
		r->idf[i] = sqlite_rank_idf(n, df[i]);
	return r;
}

static void bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	if (argc != 2) {
		sqlite3_result_error(ctx, "bookd_bm25(table, weights, document frequencies)", -1);
		return;
	}
	struct rank *r = api->xGetAuxdata(fts, 0);
	if (!r) {
		const char *why = NULL;
		if (!(r = prepare(api, fts, argv, &why)) || api->xSetAuxdata(fts, r, sqlite3_free) != SQLITE_OK) {
			sqlite3_result_error(ctx, why ? why : "bookd_bm25: out of memory", -1);
			return;
		}
	}
	double freq[RANK_MAX_PHRASES] = { 0 };
	int ninst = 0, dl = 0;
	if (api->xInstCount(fts, &ninst) != SQLITE_OK || api->xColumnSize(fts, -1, &dl) != SQLITE_OK) {
		sqlite3_result_error(ctx, "bookd_bm25: cannot read the row", -1);
		return;
	}
	for (int i = 0; i < ninst; i++) {
		int phrase, col, off;
		if (api->xInst(fts, i, &phrase, &col, &off) != SQLITE_OK) {
			sqlite3_result_error(ctx, "bookd_bm25: cannot read the row", -1);
			return;
		}
		if (phrase < r->nphrases) /* a column without a weight weighs 1, as in bm25() */
			freq[phrase] += col < r->ncols ? r->weight[col] : 1.0;
	}
	double norm = BM25_K1 * (1 - BM25_B + BM25_B * (double)dl / r->avgdl), score = 0;
	for (int i = 0; i < r->nphrases; i++)
		if (freq[i] > 0)
			score += r->idf[i] * freq[i] * (BM25_K1 + 1) / (freq[i] + norm);
	sqlite3_result_double(ctx, score);
}

double sqlite_rank_idf(double nrows, double df)
{
	double idf = log((nrows - df + 0.5) / (df + 0.5));
	return idf > 0 ? idf : 1e-6;
}

double sqlite_rank_bound(double idf)
{
	return idf * (BM25_K1 + 1);
}

int sqlite_rank_register(sqlite3 *h)
{
	fts5_api *api = NULL;
	sqlite3_stmt *st = NULL;
	if (sqlite3_prepare_v2(h, "SELECT fts5(?1)", -1, &st, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
	sqlite3_step(st);
	sqlite3_finalize(st);
	if (!api || api->iVersion < 2)
		return -1;
	return api->xCreateFunction(api, "bookd_bm25", NULL, bm25, NULL) == SQLITE_OK ? 0 : -1;
}
