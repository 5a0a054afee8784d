/* A BM25 ranking function for FTS5 that scores only the leading phrases of a
 * query, with document frequencies given by the caller (sqlite_rank.c). */
#ifndef BOOKD_SQLITE_RANK_H
#define BOOKD_SQLITE_RANK_H

#include <sqlite3.h>

#define RANK_MAX_PHRASES 64

/* Registers bookd_bm25() on a connection: 0, or -1 without FTS5. */
int sqlite_rank_register(sqlite3 *h);
/* FTS5's IDF of a term in df of nrows rows (1e-6 at the least). */
double sqlite_rank_idf(double nrows, double df);
/* The most a term of that IDF can add to a row's score, whatever the row. */
double sqlite_rank_bound(double idf);

#endif
