/* Book metadata by ISBN: the JSON mappings of Open Library and Google Books,
 * the chain against the fake servers (tests/api/fake_openlibrary.py, started
 * here), and books_from_isbn on a temporary SQLite database: find or create,
 * both ISBN forms, fields an editor set kept, editions linked. */
#include "unit.h"

#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/timeutil.h"
#include "providers/http_client.h"
#include "providers/metadata.h"
#include "providers/metadata_int.h"
#include "services/books.h"
#include "store/db.h"

#define OL_FOX "9780140328721"
#define OL_FOX_10 "0140328726"
#define OL_FOX_2E "9780140328738"
#define OL_URDU "9789694460086"
#define GB_ONLY "9781491950357"
#define NOWHERE "9780000000002"

static struct arena A;

static json_t *parse(const char *s)
{
	json_t *j = json_loads(s, 0, NULL);
	assert_non_null(j);
	return j;
}

/* ---- JSON mappings ------------------------------------------------------------- */

static void test_ol_edition_then_work_type_value(void **state)
{
	(void)state;
	json_t *ed = parse("{\"title\": \" Fantastic Mr. Fox \", \"publishers\": [\"Puffin\"],"
			   "\"publish_date\": \"October 1, 1988\", \"number_of_pages\": 96, \"covers\": [-1, 8739161],"
			   "\"languages\": [{\"key\": \"/languages/eng\"}], \"works\": [{\"key\": \"/works/OL45804W\"}],"
			   "\"authors\": [{\"key\": \"/authors/OL34184A\"}], \"isbn_10\": [\"0140328726\"]}");
	json_t *work = parse("{\"description\": {\"type\": \"/type/text\", \"value\": \"Mr. Fox outwits.\"},"
			     "\"subjects\": [\"Foxes\", \"Fiction\", \"Foxes\"],"
			     "\"authors\": [{\"author\": {\"key\": \"/authors/OTHER1A\"}}]}");
	struct book_metadata md = { 0 };
	const char *work_key, *keys[METADATA_MAX_AUTHORS];
	int nkeys;
	struct err e = { 0 };
	assert_int_equal(metadata_ol_edition(&A, ed, &md, &work_key, keys, &nkeys, &e), 0);
	assert_string_equal(md.title, "Fantastic Mr. Fox");
	assert_string_equal(md.publisher, "Puffin");
	assert_string_equal(md.publish_date, "1988-10-01");
	assert_int_equal(md.pages, 96);
	assert_string_equal(md.cover_url, "https://covers.openlibrary.org/b/id/8739161-L.jpg");
	assert_string_equal(md.language, "en");
	assert_string_equal(work_key, "/works/OL45804W");
	assert_int_equal(nkeys, 1);
	assert_string_equal(keys[0], "/authors/OL34184A");
	assert_string_equal(md.isbn10, "0140328726");
	metadata_ol_work(&A, work, &md, keys, &nkeys);
	assert_string_equal(md.description, "Mr. Fox outwits.");
	assert_int_equal(md.nsubjects, 2);
	assert_int_equal(nkeys, 1); /* the edition named its authors: the work's are not added */
	json_t *author = parse("{\"name\": \"Roald Dahl\", \"personal_name\": \"Dahl, Roald\"}");
	assert_string_equal(metadata_ol_author(&A, author), "Roald Dahl");
	json_decref(author);
	json_decref(ed);
	json_decref(work);
}

static void test_ol_work_string_description_and_work_authors(void **state)
{
	(void)state;
	json_t *ed = parse("{\"title\": \"Raja Gidh\", \"languages\": [{\"key\": \"/languages/urd\"}],"
			   "\"works\": [{\"key\": \"/works/OL9W\"}], \"publish_date\": \"Mar 2011\"}");
	json_t *work = parse("{\"description\": \"A novel.\", \"covers\": [42],"
			     "\"authors\": [{\"author\": {\"key\": \"/authors/OL4A\"}, \"type\": {\"key\": \"/type/author_role\"}},"
			     "{\"author\": {\"key\": \"/authors/bad key\"}}, {\"key\": \"/authors/OL5A\"}]}");
	struct book_metadata md = { 0 };
	const char *work_key, *keys[METADATA_MAX_AUTHORS];
	int nkeys;
	struct err e = { 0 };
	assert_int_equal(metadata_ol_edition(&A, ed, &md, &work_key, keys, &nkeys, &e), 0);
	assert_int_equal(nkeys, 0);
	assert_string_equal(md.language, "ur");
	assert_string_equal(md.publish_date, "2011-03");
	metadata_ol_work(&A, work, &md, keys, &nkeys);
	assert_string_equal(md.description, "A novel.");
	assert_string_equal(md.cover_url, "https://covers.openlibrary.org/b/id/42-L.jpg");
	assert_int_equal(nkeys, 2); /* {author:{key}} and a bare {key}; the malformed key dropped */
	assert_string_equal(keys[0], "/authors/OL4A");
	assert_string_equal(keys[1], "/authors/OL5A");
	json_decref(ed);
	json_decref(work);

	json_t *untitled = parse("{\"publishers\": [\"X\"]}");
	assert_int_equal(metadata_ol_edition(&A, untitled, &md, &work_key, keys, &nkeys, &e), ERR_UNAVAILABLE);
	json_decref(untitled);
}

static void test_language_mapping(void **state)
{
	(void)state;
	assert_string_equal(metadata_language(&A, "eng"), "en");
	assert_string_equal(metadata_language(&A, "urd"), "ur");
	assert_string_equal(metadata_language(&A, "fre"), "fr");
	assert_string_equal(metadata_language(&A, "GER"), "de");
	assert_string_equal(metadata_language(&A, "chi"), "zh");
	assert_string_equal(metadata_language(&A, "EN"), "en");
	assert_string_equal(metadata_language(&A, "haw"), "haw"); /* no two-letter form: kept */
	assert_null(metadata_language(&A, "e1g"));
	assert_null(metadata_language(&A, "english"));
	assert_null(metadata_language(&A, NULL));
}

static void test_dates(void **state)
{
	(void)state;
	assert_string_equal(metadata_date(&A, "2008-08-01"), "2008-08-01");
	assert_string_equal(metadata_date(&A, "March 2008"), "2008-03");
	assert_string_equal(metadata_date(&A, "Aug 01, 2008"), "2008-08-01");
	assert_string_equal(metadata_date(&A, "1 March 2008"), "2008-03-01");
	assert_string_equal(metadata_date(&A, "c1998"), "1998");
	assert_string_equal(metadata_date(&A, "2017"), "2017");
	assert_string_equal(metadata_date(&A, "n.d."), "n.d.");
	assert_null(metadata_date(&A, ""));
}

static void test_gb_items_absent_and_matching_item(void **state)
{
	(void)state;
	struct book_metadata md = { 0 };
	struct err e = { 0 };
	json_t *none = parse("{\"kind\": \"books#volumes\", \"totalItems\": 0}");
	assert_int_equal(metadata_gb_volumes(&A, none, GB_ONLY, &md, &e), ERR_NOT_FOUND);
	json_decref(none);
	json_t *doc = parse(
		"{\"kind\": \"books#volumes\", \"totalItems\": 2, \"items\": ["
		"{\"volumeInfo\": {\"title\": \"Other\", \"industryIdentifiers\": [{\"type\": \"ISBN_13\", \"identifier\": \"9780000000019\"}]}},"
		"{\"volumeInfo\": {\"title\": \"DDIA\", \"subtitle\": \"Big Ideas\", \"authors\": [\"Martin Kleppmann\"],"
		"\"publisher\": \"O'Reilly\", \"publishedDate\": \"2017-03-16\", \"pageCount\": 616,"
		"\"description\": \"Data.\", \"categories\": [\"Computers\"], \"language\": \"zh-CN\","
		"\"imageLinks\": {\"thumbnail\": \"http://books.google.com/x?id=1\"},"
		"\"industryIdentifiers\": [{\"type\": \"ISBN_10\", \"identifier\": \"1491950358\"}]}}]}");
	memset(&md, 0, sizeof(md));
	assert_int_equal(metadata_gb_volumes(&A, doc, GB_ONLY, &md, &e), 0);
	assert_string_equal(md.title, "DDIA"); /* the item naming the ISBN (by its ISBN-10), not the first */
	assert_string_equal(md.subtitle, "Big Ideas");
	assert_int_equal(md.nauthors, 1);
	assert_string_equal(md.authors[0], "Martin Kleppmann");
	assert_string_equal(md.publish_date, "2017-03-16");
	assert_int_equal(md.pages, 616);
	assert_string_equal(md.language, "zh-CN");
	assert_string_equal(md.cover_url, "https://books.google.com/x?id=1");
	assert_string_equal(md.subjects[0], "Computers");
	assert_string_equal(md.isbn10, "1491950358");
	json_decref(doc);
}

/* ---- the chain against the fake servers ---------------------------------------- */

static pid_t fake_pid = -1;
static int fake_stdin = -1;
static int fake_port;

static int start_fake(void)
{
	int in[2], out[2];
	if (pipe(in) || pipe(out))
		return -1;
	fake_pid = fork();
	if (fake_pid < 0)
		return -1;
	if (fake_pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execlp("python3", "python3", "tests/api/fake_openlibrary.py", "--port", "0", "--hang-seconds", "5",
		       (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	fake_stdin = in[1];
	char line[64] = "";
	size_t n = 0;
	while (n < sizeof(line) - 1 && read(out[0], line + n, 1) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	close(out[0]);
	return sscanf(line, "ready %d", &fake_port) == 1 ? 0 : -1;
}

static void stop_fake(void)
{
	if (fake_stdin >= 0)
		close(fake_stdin); /* the fake exits when its stdin closes */
	if (fake_pid > 0) {
		int st;
		for (int i = 0; i < 50 && waitpid(fake_pid, &st, WNOHANG) == 0; i++)
			usleep(100000);
		if (waitpid(fake_pid, &st, WNOHANG) == 0) {
			kill(fake_pid, SIGKILL);
			waitpid(fake_pid, &st, 0);
		}
	}
	fake_pid = -1;
	fake_stdin = -1;
}

static struct metadata *open_chain(const char *ol_mode, const char *gb_mode, int timeout_s, int tries,
				   const char *key)
{
	char ol[96], gb[96];
	snprintf(ol, sizeof(ol), "http://127.0.0.1:%d/%s", fake_port, ol_mode);
	snprintf(gb, sizeof(gb), "http://127.0.0.1:%d/%s/", fake_port, gb_mode);
	struct metadata_config cfg = { ol, gb, key, timeout_s, tries };
	struct metadata *m;
	struct err e = { 0 };
	assert_int_equal(metadata_open(&m, &cfg, NULL, &e), 0);
	return m;
}

/* How many requests of `kind` the fake has seen. */
static long fake_count(const char *kind)
{
	struct phttp *h;
	struct err e = { 0 };
	struct phttp_config hc = { .name = "stats", .tries = 1, .max_response = 1 << 20 };
	assert_int_equal(phttp_new(&h, &hc, NULL, &e), 0);
	char url[96];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/_stats", fake_port);
	json_t *doc;
	assert_int_equal(metadata_get_json(h, url, time_now_ms() + 5000, 5000, "stats", &doc, &e), 0);
	json_t *v = json_object_get(json_object_get(doc, "counts"), kind);
	long n = json_is_integer(v) ? (long)json_integer_value(v) : 0;
	if (strcmp(kind, "keys") == 0)
		n = (long)json_array_size(json_object_get(doc, "keys"));
	json_decref(doc);
	phttp_free(h);
	return n;
}

static void test_chain_open_library(void **state)
{
	(void)state;
	struct metadata *m = open_chain("ok", "ok", 5, 3, NULL);
	struct book_metadata md;
	struct err e = { 0 };
	long gb_before = fake_count("gb");
	assert_int_equal(metadata_lookup(m, &A, OL_FOX, &md, &e), 0);
	assert_string_equal(md.source, "openlibrary");
	assert_string_equal(md.title, "Fantastic Mr. Fox");
	assert_int_equal(md.nauthors, 1);
	assert_string_equal(md.authors[0], "Roald Dahl");
	assert_string_equal(md.description, "Mr. Fox outwits three farmers.");
	assert_string_equal(md.language, "en");
	assert_string_equal(md.work_key, "/works/OL45804W");
	assert_string_equal(md.publish_date, "1988-10-01");
	assert_int_equal(fake_count("gb"), gb_before); /* not asked: Open Library knew it */

	memset(&md, 0, sizeof(md));
	assert_int_equal(metadata_lookup(m, &A, OL_URDU, &md, &e), 0);
	assert_string_equal(md.language, "ur");
	assert_int_equal(md.nauthors, 1);
	assert_string_equal(md.authors[0], "Bano Qudsia"); /* from the work's {author: {key}} */
	assert_string_equal(md.description, "A novel of the vulture king.");
	metadata_close(m);
}

static void test_chain_falls_back_and_not_found(void **state)
{
	(void)state;
	struct metadata *m = open_chain("ok", "ok", 5, 3, "sekrit-KEY_1");
	struct book_metadata md;
	struct err e = { 0 };
	long keys = fake_count("keys");
	assert_int_equal(metadata_lookup(m, &A, GB_ONLY, &md, &e), 0);
	assert_string_equal(md.source, "googlebooks");
	assert_string_equal(md.title, "Designing Data-Intensive Applications");
	assert_int_equal(fake_count("keys"), keys + 1);

	long ol = fake_count("ok:ol_isbn"), gb = fake_count("ok:gb");
	e = (struct err){ 0 };
	assert_int_equal(metadata_lookup(m, &A, NOWHERE, &md, &e), ERR_NOT_FOUND);
	assert_contains(e.msg, "no metadata source knows it");
	assert_int_equal(fake_count("ok:ol_isbn"), ol + 1); /* a 404 is an answer: not retried */
	assert_int_equal(fake_count("ok:gb"), gb + 1);
	metadata_close(m);
}

static void test_chain_sources_down(void **state)
{
	(void)state;
	/* Open Library fails (500, retried), Google Books knows the book */
	struct metadata *m = open_chain("500", "ok", 5, 2, NULL);
	struct book_metadata md;
	struct err e = { 0 };
	long n500 = fake_count("500:ol_isbn");
	assert_int_equal(metadata_lookup(m, &A, GB_ONLY, &md, &e), 0);
	assert_string_equal(md.source, "googlebooks");
	assert_int_equal(fake_count("500:ol_isbn"), n500 + 2);
	/* ... and does not know this one: unavailable, not "unknown" */
	e = (struct err){ 0 };
	assert_int_equal(metadata_lookup(m, &A, OL_FOX, &md, &e), ERR_UNAVAILABLE);
	assert_contains(e.msg, "could not be asked");
	metadata_close(m);

	/* malformed answers from both */
	m = open_chain("malformed", "malformed", 5, 1, NULL);
	e = (struct err){ 0 };
	assert_int_equal(metadata_lookup(m, &A, OL_FOX, &md, &e), ERR_UNAVAILABLE);
	assert_contains(e.msg, "malformed");
	metadata_close(m);
}

static void test_chain_slow_source_times_out(void **state)
{
	(void)state;
	struct metadata *m = open_chain("hang", "ok", 1, 1, NULL);
	struct book_metadata md;
	struct err e = { 0 };
	int64_t t0 = time_now_ms();
	assert_int_equal(metadata_lookup(m, &A, GB_ONLY, &md, &e), 0); /* Open Library timed out: Google answered */
	assert_string_equal(md.source, "googlebooks");
	int64_t took = time_now_ms() - t0;
	assert_true(took >= 900 && took < 4000);
	metadata_close(m);
}

/* ---- books_from_isbn on a temporary database ----------------------------------- */

static char path[64];
static db *d;

static int db_setup(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "/tmp/bookd-test-metadata-%d.db", (int)getpid());
	unlink(path);
	char url[80];
	snprintf(url, sizeof(url), "sqlite:%s", path);
	struct err e = { 0 };
	int version;
	if (db_open(&d, url, 4, &e) || db_migrate(d, &version, &e))
		return -1;
	return 0;
}

static int db_teardown(void **state)
{
	(void)state;
	db_close(d);
	char p[80];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
	return 0;
}

static struct book_metadata fox(const char *title, const char *date, const char *lang)
{
	struct book_metadata md = { .title = title, .nauthors = 1, .language = lang, .publisher = "Puffin",
				    .publish_date = date, .description = "Mr. Fox.", .pages = 96,
				    .work_key = "/works/OL45804W", .source = "openlibrary" };
	md.authors[0] = "Roald Dahl";
	md.subjects[0] = "Foxes";
	md.nsubjects = 1;
	return md;
}

static int has_isbn(const struct book *b, const char *isbn, const char *type)
{
	for (int i = 0; i < b->nisbns; i++)
		if (strcmp(b->isbns[i].isbn, isbn) == 0 && strcmp(b->isbns[i].type, type) == 0)
			return 1;
	return 0;
}

static void test_find_or_create_both_forms(void **state)
{
	(void)state;
	struct book b;
	int created;
	struct err e = { 0 };
	assert_int_equal(books_from_isbn(d, &A, "978-0-14-032872-1", NULL, &b, &created, &e), ERR_NOT_FOUND);
	e = (struct err){ 0 };
	assert_int_equal(books_from_isbn(d, &A, "978-0-14-032872-2", NULL, &b, &created, &e), ERR_INVALID);
	assert_contains(e.msg, "checksum");

	struct book_metadata md = fox("Fantastic Mr. Fox", "1988-10-01", "en");
	e = (struct err){ 0 };
	assert_int_equal(books_from_isbn(d, &A, OL_FOX_10, &md, &b, &created, &e), 0);
	assert_true(created);
	assert_string_equal(b.title, "Fantastic Mr. Fox");
	assert_string_equal(b.author, "Roald Dahl");
	assert_string_equal(b.metadata_source, "openlibrary");
	assert_string_equal(b.subjects_json, "[\"Foxes\"]");
	assert_int_equal(b.pages, 96);
	assert_int_equal(b.nisbns, 2);
	assert_true(has_isbn(&b, OL_FOX, "isbn13"));
	assert_true(has_isbn(&b, OL_FOX_10, "isbn10"));
	char id[UUID_STR_LEN];
	memcpy(id, b.id, sizeof(id));

	/* the same book again, by its other form; no metadata: found as it is */
	assert_int_equal(books_from_isbn(d, &A, OL_FOX, NULL, &b, &created, &e), 0);
	assert_false(created);
	assert_string_equal(b.id, id);
	assert_int_equal(books_get_by_isbn(d, &A, OL_FOX_10, &b, &e), 0);
	assert_string_equal(b.id, id);
}

static void test_editor_fields_kept(void **state)
{
	(void)state;
	struct book b;
	int created;
	struct err e = { 0 };
	struct book_metadata md = fox("Fantastic Mr. Fox", "1988-10-01", "en");
	assert_int_equal(books_from_isbn(d, &A, OL_FOX, &md, &b, &created, &e), 0);
	char id[UUID_STR_LEN];
	memcpy(id, b.id, sizeof(id));

	/* an editor corrects the title and clears the publisher */
	struct book_input in = { .set = BF_TITLE | BF_PUBLISHER, .title = "Fantastic Mr Fox (annotated)" };
	assert_int_equal(books_update(d, &A, id, &in, &b, &e), 0);
	assert_true(b.edited & BF_TITLE);
	assert_true(b.edited & BF_PUBLISHER);

	/* fresh metadata: editor's fields stay, metadata's own are refreshed */
	md.title = "Fantastic Mr. Fox (reissue)";
	md.description = "Updated blurb.";
	assert_int_equal(books_from_isbn(d, &A, OL_FOX, &md, &b, &created, &e), 0);
	assert_false(created);
	assert_string_equal(b.title, "Fantastic Mr Fox (annotated)");
	assert_null(b.publisher);
	assert_string_equal(b.description, "Updated blurb.");

	/* a book made without metadata (an import): its values are kept, gaps filled */
	struct book_input imp = { .set = BF_TITLE | BF_ISBNS, .title = "Raja Gidh (imported)", .nisbns = 1 };
	imp.isbns[0] = OL_URDU;
	struct book made;
	assert_int_equal(books_create(d, &A, &imp, &made, &e), 0);
	struct book_metadata ur = { .title = "Raja Gidh", .nauthors = 1, .language = "ur", .publish_date = "2011-03",
				    .description = "A novel.", .source = "openlibrary" };
	ur.authors[0] = "Bano Qudsia";
	assert_int_equal(books_from_isbn(d, &A, OL_URDU, &ur, &b, &created, &e), 0);
	assert_false(created);
	assert_string_equal(b.id, made.id);
	assert_string_equal(b.title, "Raja Gidh (imported)");
	assert_string_equal(b.author, "Bano Qudsia");
	assert_string_equal(b.language, "ur"); /* "en" nobody chose counts as empty */
	assert_string_equal(b.description, "A novel.");
}

static void test_editions_linked_by_language(void **state)
{
	(void)state;
	struct book first, second, urdu;
	int created;
	struct err e = { 0 };
	struct book_metadata md = fox("Fantastic Mr. Fox", "1988-10-01", "en");
	assert_int_equal(books_from_isbn(d, &A, OL_FOX, &md, &first, &created, &e), 0);
	md = fox("Fantastic Mr. Fox", "2001", "en");
	md.edition = "2nd ed.";
	assert_int_equal(books_from_isbn(d, &A, OL_FOX_2E, &md, &second, &created, &e), 0);
	assert_true(created);
	md = fox("Lomri", "2015", "ur");
	assert_int_equal(books_from_isbn(d, &A, "9789694460109", &md, &urdu, &created, &e), 0);

	assert_int_equal(books_get(d, &A, first.id, &first, &e), 0);
	assert_int_equal(books_get(d, &A, second.id, &second, &e), 0);
	assert_int_equal(books_get(d, &A, urdu.id, &urdu, &e), 0);
	assert_string_equal(first.superseded_by, second.id);
	assert_null(second.superseded_by);
	assert_string_equal(second.supersedes, first.id);
	assert_null(urdu.superseded_by); /* another language: its own line */
	assert_null(urdu.supersedes);
	assert_int_equal(first.neditions, 3);
	assert_int_equal(second.neditions, 3);

	/* the newer edition goes: the older one is current again */
	assert_int_equal(books_delete(d, second.id, &e), 0);
	assert_int_equal(books_get(d, &A, first.id, &first, &e), 0);
	assert_null(first.superseded_by);
	assert_int_equal(first.neditions, 2);
}

static int setup_all(void **state)
{
	(void)state;
	arena_init(&A, 4096);
	if (phttp_global_init())
		return -1;
	return start_fake();
}

static int teardown_all(void **state)
{
	(void)state;
	stop_fake();
	phttp_global_cleanup();
	arena_free(&A);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ol_edition_then_work_type_value),
		cmocka_unit_test(test_ol_work_string_description_and_work_authors),
		cmocka_unit_test(test_language_mapping),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_gb_items_absent_and_matching_item),
		cmocka_unit_test(test_chain_open_library),
		cmocka_unit_test(test_chain_falls_back_and_not_found),
		cmocka_unit_test(test_chain_sources_down),
		cmocka_unit_test(test_chain_slow_source_times_out),
		cmocka_unit_test_setup_teardown(test_find_or_create_both_forms, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_editor_fields_kept, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(test_editions_linked_by_language, db_setup, db_teardown),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
