/* What books.c and books_isbn.c share. */
#ifndef BOOKD_BOOKS_INT_H
#define BOOKD_BOOKS_INT_H

#include "books.h"

/* Redoes the superseded_by links of an edition group (NULL: nothing to do):
 * in each language, editions with a known publish date, oldest first, each
 * superseded by the next; an edition without a date is linked to none. */
int books_relink_editions(db_conn *c, struct arena *a, const char *group, struct err *e) WUR;

#endif
