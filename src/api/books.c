#include <stdio.h>
#include <string.h>

#include "../core/json.h"
#include "../services/books.h"
#include "api.h"

#define TEXT_MAX 500
#define URL_MAX 2048
#define DESCRIPTION_MAX 20000

static const struct {
	unsigned bit;
	const char *name;
} book_fields[] = {
	{ BF_TITLE, "title" },	       { BF_SUBTITLE, "subtitle" },	  { BF_AUTHOR, "author" },
	{ BF_LANGUAGE, "language" },   { BF_EDITION, "edition" },	  { BF_PUBLISHER, "publisher" },
	{ BF_PAGES, "pages" },	       { BF_PUBLISH_DATE, "publish_date" }, { BF_COVER_URL, "cover_url" },
	{ BF_DESCRIPTION, "description" }, { BF_SUBJECTS, "subjects" },
};

static json_t *field_names(unsigned bits)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < sizeof(book_fields) / sizeof(book_fields[0]); i++)
		if (bits & book_fields[i].bit)
			json_array_append_new(arr, json_string(book_fields[i].name));
	return arr;
}

static json_t *editions_json(const struct book *b)
{
	json_t *arr = json_array();
	for (int i = 0; i < b->neditions; i++) {
		const struct book_edition *ed = &b->editions[i];
		json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:b}", "id", ed->id, "title",
						     ed->title ? ed->title : "", "edition", jstr_or_null(ed->edition),
						     "language", ed->language ? ed->language : "en", "publish_date",
						     jstr_or_null(ed->publish_date), "superseded_by",
						     jstr_or_null(ed->superseded_by), "current", !ed->superseded_by));
	}
	return arr;
}

json_t *api_book_json(const struct book *b)
{
	json_t *isbns = json_array();
	for (int i = 0; i < b->nisbns; i++)
		json_array_append_new(isbns, json_pack("{s:s, s:s}", "isbn", b->isbns[i].isbn, "isbn_type",
						       b->isbns[i].type));
	json_t *subjects = b->subjects_json ? json_loads(b->subjects_json, 0, NULL) : NULL;
	if (!json_is_array(subjects)) {
		json_decref(subjects);
		subjects = json_array();
	}
	json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:o, s:o}", "id", b->id,
			      "title", b->title ? b->title : "", "author", jstr_or_null(b->author), "language",
			      b->language ? b->language : "en", "edition", jstr_or_null(b->edition), "publisher",
			      jstr_or_null(b->publisher), "pages", b->pages ? json_integer(b->pages) : json_null(),
			      "publish_date", jstr_or_null(b->publish_date), "cover_url", jstr_or_null(b->cover_url),
			      "isbns", isbns, "chapter_count", (json_int_t)b->chapter_count, "created_at",
			      api_time(b->created_at), "updated_at", api_time(b->updated_at));
	if (o) {
		json_object_set_new(o, "subtitle", jstr_or_null(b->subtitle));
		json_object_set_new(o, "description", jstr_or_null(b->description));
		json_object_set_new(o, "subjects", subjects);
		json_object_set_new(o, "metadata_source", jstr_or_null(b->metadata_source));
		json_object_set_new(o, "edited_fields", field_names(b->edited));
		json_object_set_new(o, "superseded_by", jstr_or_null(b->superseded_by));
		json_object_set_new(o, "supersedes", jstr_or_null(b->supersedes));
		json_object_set_new(o, "editions", editions_json(b));
	} else {
		json_decref(subjects);
	}
	return o;
}

/* A string field of a book: present (maybe null) sets the bit. */
static void str_field(json_t *o, const char *key, unsigned bit, size_t max, const char **dst,
		      struct book_input *in, struct err *e)
{
	if (!json_object_get(o, key))
		return;
	const char *v = NULL;
	if (jget_str(o, key, J_OPTIONAL, 0, max, &v, e) >= 0) {
		*dst = v;
		in->set |= bit;
	}
}

static int parse_book(json_t *o, struct book_input *in, struct err *e)
{
	memset(in, 0, sizeof(*in));
	str_field(o, "title", BF_TITLE, TEXT_MAX, &in->title, in, e);
	str_field(o, "author", BF_AUTHOR, TEXT_MAX, &in->author, in, e);
	str_field(o, "language", BF_LANGUAGE, 35, &in->language, in, e);
	str_field(o, "edition", BF_EDITION, TEXT_MAX, &in->edition, in, e);
	str_field(o, "publisher", BF_PUBLISHER, TEXT_MAX, &in->publisher, in, e);
	str_field(o, "publish_date", BF_PUBLISH_DATE, 64, &in->publish_date, in, e);
	str_field(o, "cover_url", BF_COVER_URL, URL_MAX, &in->cover_url, in, e);
	str_field(o, "subtitle", BF_SUBTITLE, TEXT_MAX, &in->subtitle, in, e);
	str_field(o, "description", BF_DESCRIPTION, DESCRIPTION_MAX, &in->description, in, e);
	if (json_object_get(o, "pages")) {
		long long pages = 0;
		if (jget_int(o, "pages", J_OPTIONAL, 1, 1000000, &pages, e) >= 0) {
			in->pages = pages;
			in->set |= BF_PAGES;
		}
	}
	json_t *isbns = json_object_get(o, "isbns");
	if (isbns && !json_is_null(isbns)) {
		if (!json_is_array(isbns)) {
			err_field(e, "isbns", "must be an array of strings");
		} else if (json_array_size(isbns) > BOOK_MAX_ISBNS) {
			err_field(e, "isbns", "must have at most %d entries", BOOK_MAX_ISBNS);
		} else {
			size_t i;
			json_t *v;
			json_array_foreach(isbns, i, v) {
				if (!json_is_string(v) || json_string_length(v) > 32) {
					char field[32];
					snprintf(field, sizeof(field), "isbns[%zu]", i);
					err_field(e, field, "must be an ISBN string");
					continue;
				}
				in->isbns[in->nisbns++] = json_string_value(v);
			}
			in->set |= BF_ISBNS;
		}
	} else if (isbns) {
		in->set |= BF_ISBNS; /* null clears */
	}
	return e->code ? -1 : 0;
}

void api_books_list(http_req *req, void *app_)
{
	struct app *app = app_;
	int limit;
	const char *cursor;
	if (api_page_params(req, &limit, &cursor))
		return;
	struct book *items;
	int n;
	char *next;
	struct err e = { 0 };
	if (books_list(app->db, http_arena(req), cursor, limit, &items, &n, &next, &e)) {
		api_fail(req, &e);
		return;
	}
	json_t *arr = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(arr, api_book_json(&items[i]));
	api_json(req, 200, json_pack("{s:o, s:o}", "items", arr, "next_cursor", jstr_or_null(next)));
}

static void respond_book(http_req *req, int status, const struct book *b)
{
	if (status == 201) {
		char loc[96];
		snprintf(loc, sizeof(loc), "/api/v1/books/%s", b->id);
		http_set_header(req, "Location", loc);
	}
	api_json(req, status, api_book_json(b));
}

static void write_book(http_req *req, struct app *app, int create)
{
	if (api_require_book_write(req, app, create ? NULL : http_param(req, 0), NULL))
		return;
	json_t *o;
	if (api_read_object(req, &o))
		return;
	struct book_input in;
	struct book b;
	struct err e = { 0 };
	int rc = parse_book(o, &in, &e);
	if (!rc && create && !(in.set & BF_TITLE))
		err_field(&e, "title", "is required"), rc = -1;
	if (!rc)
		rc = create ? books_create(app->db, http_arena(req), &in, &b, &e)
			    : books_update(app->db, http_arena(req), http_param(req, 0), &in, &b, &e);
	if (rc)
		api_fail(req, &e);
	else
		respond_book(req, create ? 201 : 200, &b);
	json_decref(o);
}

void api_books_create(http_req *req, void *app)
{
	write_book(req, app, 1);
}

void api_books_update(http_req *req, void *app)
{
	write_book(req, app, 0);
}

void api_books_get(http_req *req, void *app_)
{
	struct app *app = app_;
	struct book b;
	struct err e = { 0 };
	if (books_get(app->db, http_arena(req), http_param(req, 0), &b, &e))
		api_fail(req, &e);
	else
		respond_book(req, 200, &b);
}

void api_books_by_isbn(http_req *req, void *app_)
{
	struct app *app = app_;
	struct book b;
	struct err e = { 0 };
	if (books_get_by_isbn(app->db, http_arena(req), http_param(req, 0), &b, &e))
		api_fail(req, &e);
	else
		respond_book(req, 200, &b);
}

void api_books_delete(http_req *req, void *app_)
{
	struct app *app = app_;
	if (api_require_book_write(req, app, http_param(req, 0), NULL))
		return;
	struct err e = { 0 };
	if (books_delete(app->db, http_param(req, 0), &e))
		api_fail(req, &e);
	else
		http_respond_empty(req, 204);
}
