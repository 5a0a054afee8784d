/*
 * book.translate: one step that walks the book's chapters in order and asks
 * transform_chapter for each (cached sections cost nothing, so a resumed job
 * skips quickly past what it did); the index of the next chapter is kept in
 * the job's state, progress is chapters done over chapters, and the result
 * counts chapters, sections computed and sections that fell back.
 */
#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "books.h"
#include "jobs.h"
#include "transform.h"

const char *const transform_job_steps[] = { "translate" };

#define PAGE 100

int transform_job_run(struct job_ctx *jc, struct err *e)
{
	json_t *p = job_payload(jc), *st = job_state(jc);
	const char *book_id = json_string_value(json_object_get(p, "book_id"));
	const char *lang = json_string_value(json_object_get(p, "lang"));
	struct transform *t = NULL;
	struct arena a;
	arena_init(&a, 65536);
	int rc = 0;
	if (!book_id || !lang || !books_language_valid(lang)) {
		rc = err_set(e, ERR_INVALID, "book.translate needs book_id and a valid lang");
		goto out;
	}
	struct transform_config tc = { .llm = job_llm(jc), .deadline_s = 120, .stop = job_cancel_signal(jc) };
	if ((rc = transform_new(&t, job_db(jc), &tc, e)))
		goto out;
	if (!transform_has_model(t)) {
		rc = err_set(e, ERR_INVALID, "no language model is configured");
		goto out;
	}
	/* every chapter number, in order */
	json_int_t next = json_integer_value(json_object_get(st, "next"));
	long total = 0, computed = json_integer_value(json_object_get(st, "computed")),
	     fallbacks = json_integer_value(json_object_get(st, "fallbacks"));
	char **ids = NULL;
	int cap = 0;
	const char *cursor = NULL;
	do {
		struct chapter *items;
		int n;
		char *more;
		if ((rc = chapters_list(job_db(jc), &a, book_id, cursor, PAGE, &items, &n, &more, e)))
			goto out;
		for (int i = 0; i < n; i++) {
			char **q = arena_grow(&a, ids, (int)total, &cap, sizeof(*ids));
			if (!q) {
				rc = err_set(e, ERR_INTERNAL, "out of memory");
				goto out;
			}
			ids = q;
			ids[total++] = arena_strdup(&a, items[i].id);
		}
		cursor = more;
	} while (cursor);
	for (json_int_t i = next; i < total; i++) {
		if (job_should_stop(jc)) {
			rc = err_set(e, ERR_UNAVAILABLE, "stopped; the job resumes at chapter %lld", (long long)i + 1);
			goto out;
		}
		struct arena ca;
		arena_init(&ca, 65536);
		struct transform_request rq = { .book_id = book_id,
						.chapter = ids[i],
						.target = { .kind = TRANSFORM_TRANSLATE, .lang = lang } };
		struct transform_result res;
		rc = transform_chapter(t, &ca, &rq, &res, e);
		if (rc == 0) {
			computed += res.misses;
			for (int k = 0; k < res.nsections; k++)
				fallbacks += res.sections[k].fallback;
		}
		arena_free(&ca);
		if (rc == ERR_NOT_FOUND) { /* deleted meanwhile */
			err_clear(e);
			rc = 0;
		}
		if (rc)
			goto out;
		json_object_set_new(st, "next", json_integer(i + 1));
		json_object_set_new(st, "computed", json_integer(computed));
		json_object_set_new(st, "fallbacks", json_integer(fallbacks));
		job_progress(jc, (double)(i + 1) / (double)total);
	}
	job_set_result(jc, json_pack("{s:s, s:s, s:I, s:I, s:I}", "book_id", book_id, "language", lang, "chapters",
				     (json_int_t)total, "sections_computed", (json_int_t)computed,
				     "fallback_sections", (json_int_t)fallbacks));
out:
	transform_free(t);
	arena_free(&a);
	return rc;
}
