/* Copies every table of one bookd database into another (embedded SQLite →
 * PostgreSQL when moving up). The target is migrated first and must be empty;
 * everything is written in one transaction and row counts are compared. */
#ifndef BOOKD_COPY_H
#define BOOKD_COPY_H

#include <stdio.h>

#include "db.h"

struct copy_table_count {
	const char *table;
	long long rows;
};

#define COPY_MAX_TABLES 32

int db_copy(db *from, db *to, struct copy_table_count counts[COPY_MAX_TABLES], int *ntables, struct err *e) WUR;

#endif
