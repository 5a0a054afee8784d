/*
 * The job types. Each is a table entry: adding a pipeline is adding an entry
 * (and its step function) here.
 *
 * book.import — an uploaded .zip of a Markdown folder, .md, .mdx or .txt:
 *   unpack (zip → a folder beside the upload), import (the same importer as
 *   `bookd import`, one transaction, matched by title + author so a re-run
 *   updates in place; files that are not clean UTF-8 are skipped or cleaned
 *   and listed in the result's `warnings`), index (chunks, and vectors with a
 *   provider), cleanup.
 *   Upload files are removed when the job ends.
 *
 * book.index — chunk a chapter, a book or everything, then embed.
 *
 * book.process — ISBN to chapters read aloud: metadata, chapters, summaries,
 *   audio, checkpointed per chapter (services/pipeline.c).
 *
 * book.translate — every chapter of a book into one language, section by
 *   section, through the translation cache (services/transform_job.c).
 *
 * test.* (only with BOOKD_TEST_JOBS=1) exist to exercise the queue itself:
 *   test.noop (one empty step), test.steps (N steps that sleep, record each
 *   run in a file, and may fail a few times or always), test.hang (a step
 *   that, on its first run, ignores job_should_stop and waits on the cancel
 *   signal alone, as a provider call does).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "../providers/unzip.h"
#include "ingest.h"
#include "jobs.h"
#include "pipeline.h"
#include "search.h"
#include "transform.h"

/* ---- book.import ----------------------------------------------------------- */

static const char *json_str(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static int is_zip_file(const char *path)
{
	unsigned char magic[4] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, magic, 4);
	close(fd);
	return n == 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
}

/* A zip whose entries all sit in one top-level folder: import that folder. */
static void single_root(const char *dir, char *out, size_t cap)
{
	snprintf(out, cap, "%s", dir);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	int dirs = 0, others = 0;
	char only[256] = "";
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_type == DT_DIR && strcmp(de->d_name, "__MACOSX") != 0) {
			dirs++;
			snprintf(only, sizeof(only), "%s", de->d_name);
		} else if (de->d_type != DT_DIR) {
			others++;
		}
	}
	closedir(d);
	size_t dn = strlen(dir), on = strlen(only);
	if (dirs == 1 && others == 0 && dn + on + 2 <= cap) {
		memcpy(out, dir, dn);
		out[dn] = '/';
		memcpy(out + dn + 1, only, on + 1);
	}
}

static int stop_cb(void *ctx);

static int import_run(struct job_ctx *jc, struct err *e)
{
	json_t *p = job_payload(jc), *st = job_state(jc);
	const char *upload = json_str(p, "upload");
	if (!upload)
		return err_set(e, ERR_INVALID, "the job has no upload");
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s.d", upload);
	switch (job_step(jc)) {
	case 0: { /* unpack */
		const char *kind = json_str(p, "kind");
		if (remove_tree(dir))
			return err_set(e, ERR_IO, "cannot clear %s", dir);
		if (kind && !strcmp(kind, "zip")) {
			if (!is_zip_file(upload))
				return err_set(e, ERR_INVALID, "the upload is not a zip archive (%s)",
					       json_str(p, "filename") ? json_str(p, "filename") : "upload");
			int rc = unzip_to_dir(upload, dir, e);
			if (rc) {
				if (remove_tree(dir))
					log_warn("cannot remove %s", dir);
				return rc;
			}
			char root[4096];
			single_root(dir, root, sizeof(root));
			json_object_set_new(st, "source", json_string(root));
		} else {
			if (is_zip_file(upload))
				return err_set(e, ERR_INVALID, "the upload is a zip archive but was sent as %s",
					       kind ? kind : "text");
			json_object_set_new(st, "source", json_string(upload));
		}
		return 0;
	}
	case 1: { /* import */
		struct ingest_opts o = { .title = json_str(p, "title"), .author = json_str(p, "author"),
					 .language = json_str(p, "language"), .book_id = json_str(p, "book_id"),
					 .name = json_str(p, "filename") };
		struct ingest_result r;
		const char *source = json_str(st, "source");
		if (!source)
			return err_set(e, ERR_INTERNAL, "no source recorded by the unpack step");
		int rc = ingest_path(job_db(jc), source, &o, &r, e);
		if (rc) {
			/* Error messages name files by their path in our scratch space:
			 * say the uploaded name instead. */
			const char *fn = json_str(p, "filename");
			if (fn && rc != ERR_UNAVAILABLE && rc != ERR_INTERNAL) {
				const char *rel = strstr(e->msg, source);
				char msg[sizeof(e->msg)];
				if (rel)
					snprintf(msg, sizeof(msg), "%s%s", fn, rel + strlen(source));
				else
					snprintf(msg, sizeof(msg), "%s", e->msg);
				snprintf(e->msg, sizeof(e->msg), "%s", msg);
			}
			return rc == ERR_IO ? ERR_INVALID : rc;
		}
		json_t *res = ingest_result_json(&r);
		ingest_result_free(&r);
		if (!res)
			return err_set(e, ERR_INTERNAL, "out of memory");
		job_set_result(jc, res);
		json_object_set_new(st, "book_id", json_string(r.book_id));
		return 0;
	}
	case 2: { /* index: chunks now, vectors too when a provider is configured */
		const char *book_id = json_str(st, "book_id");
		struct index_stats is = { 0 };
		if (!book_id || !job_search(jc))
			return 0;
		int rc = search_index_book(job_search(jc), book_id, NULL, NULL, &is, e);
		if (rc == 0)
			rc = search_embed_pending(job_search(jc), book_id, NULL, jc, stop_cb, &is, e);
		return rc;
	}
	default: /* cleanup happens in import_finish, whatever the outcome */
		return 0;
	}
}

/* ---- book.index -------------------------------------------------------------
 * payload {book_id, chapter_id?}: chunk (that chapter, or the whole book; or
 * every book without book_id), then embed what has no vector yet. */

static void index_progress(void *ctx, int done, int total)
{
	job_progress(ctx, total ? (double)done / total : 1.0);
}

static int stop_cb(void *ctx)
{
	return job_should_stop(ctx);
}

static int index_run(struct job_ctx *jc, struct err *e)
{
	json_t *p = job_payload(jc);
	const char *book_id = json_str(p, "book_id"), *chapter_id = json_str(p, "chapter_id");
	struct search *s = job_search(jc);
	struct index_stats st = { 0 };
	if (!s)
		return err_set(e, ERR_INTERNAL, "search is not set up in this process");
	int rc;
	if (job_step(jc) == 0) {
		if (chapter_id && book_id)
			rc = search_index_chapter(s, book_id, chapter_id, &st, e);
		else
			rc = search_index_book(s, book_id, index_progress, jc, &st, e);
		if (rc == ERR_NOT_FOUND)
			return 0; /* deleted meanwhile: nothing left to index */
		json_object_set_new(job_state(jc), "chunks", json_integer(st.chunks));
		json_object_set_new(job_state(jc), "added", json_integer(st.added));
		json_object_set_new(job_state(jc), "removed", json_integer(st.removed));
		return rc;
	}
	rc = search_embed_pending(s, book_id, index_progress, jc, stop_cb, &st, e);
	json_t *state = job_state(jc);
	job_set_result(jc, json_pack("{s:O, s:O, s:O, s:i}", "chunks", json_object_get(state, "chunks"), "added",
				     json_object_get(state, "added"), "removed", json_object_get(state, "removed"),
				     "embedded", st.embedded));
	return rc;
}

static const char *const index_steps[] = { "chunk", "embed" };

static void import_finish(struct job_ctx *jc, const char *status)
{
	const char *upload = json_str(job_payload(jc), "upload");
	if (!upload)
		return;
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s.d", upload);
	if (remove_tree(dir) || (unlink(upload) && errno != ENOENT))
		log_warn("job %s (%s): cannot remove upload files", job_id(jc), status);
}

static const char *const import_steps[] = { "unpack", "import", "index", "cleanup" };

/* ---- test.* ------------------------------------------------------------------ */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static int noop_run(struct job_ctx *jc, struct err *e)
{
	(void)jc;
	(void)e;
	return 0;
}

/* payload: {steps, sleep_ms, fail_times, always_fail, record}: each run of a
 * step appends "<job> <step>\n" to `record` (a file) after sleeping; the
 * first step fails (transiently) its first fail_times runs, counted in that
 * file; always_fail fails every attempt. */
static int steps_run(struct job_ctx *jc, struct err *e)
{
	json_t *p = job_payload(jc);
	long sleep = (long)json_integer_value(json_object_get(p, "sleep_ms"));
	int steps = (int)json_integer_value(json_object_get(p, "steps"));
	if (job_step(jc) >= steps)
		return 0; /* fewer steps asked than the type has */
	for (long slept = 0; slept < sleep; slept += 20) {
		sleep_ms(20);
		job_progress(jc, (double)slept / (double)sleep);
		if (job_should_stop(jc))
			return err_set(e, ERR_UNAVAILABLE, "stopped");
	}
	if (json_is_true(json_object_get(p, "always_fail")))
		return err_set(e, ERR_UNAVAILABLE, "this job always fails");
	const char *record = json_str(p, "record");
	if (record) {
		int fd = open(record, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd >= 0) {
			char line[128];
			int n = snprintf(line, sizeof(line), "%s %d\n", job_id(jc), job_step(jc));
			if (write(fd, line, (size_t)n) != n)
				log_warn("test job: cannot record");
			close(fd);
		}
	}
	/* fail_times: fail the first step that many times, counted by how
	 * often it has been recorded. */
	json_int_t want = json_integer_value(json_object_get(p, "fail_times"));
	if (want > 0 && record && job_step(jc) == 0) {
		FILE *f = fopen(record, "r");
		long runs = 0;
		char line[128];
		while (f && fgets(line, sizeof(line), f))
			runs += strncmp(line, job_id(jc), 36) == 0 && line[37] == '0';
		if (f)
			fclose(f);
		if (runs <= want)
			return err_set(e, ERR_UNAVAILABLE, "failing on purpose (%ld of %lld)", runs, (long long)want);
	}
	job_set_result(jc, json_pack("{s:i}", "steps", job_step(jc) + 1));
	return 0;
}

/* payload {record}: the first run (no `record` file yet) creates the file and
 * hangs; later runs complete. Released runs do not count as attempts, so a
 * file, not the attempt number, tells the runs apart. */
static int hang_run(struct job_ctx *jc, struct err *e)
{
	const char *record = json_str(job_payload(jc), "record");
	if (!record)
		return err_set(e, ERR_INVALID, "test.hang needs a record file");
	int fd = open(record, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		/* Up to ten minutes: only the cancel signal ends this early. */
		stop_sleep_ms(job_cancel_signal(jc), 600000);
		return err_set(e, ERR_UNAVAILABLE, "cancelled");
	}
	job_set_result(jc, json_pack("{s:s}", "resumed_by", "another run"));
	return 0;
}

static const char *const noop_steps[] = { "run" };
static const char *const test_steps[] = { "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10" };

static const struct job_handler handlers[] = {
	{ "book.import", 4, import_steps, 3, import_run, import_finish },
	{ "book.index", 2, index_steps, 5, index_run, NULL },
	{ "book.process", 4, pipeline_steps, 5, pipeline_run, NULL },
	{ "book.translate", 1, transform_job_steps, 5, transform_job_run, NULL },
};

static const struct job_handler test_handlers[] = {
	{ "test.noop", 1, noop_steps, 3, noop_run, NULL },
	{ "test.steps", 10, test_steps, 3, steps_run, NULL },
	{ "test.hang", 1, noop_steps, 3, hang_run, NULL },
};

const struct job_handler *job_handler_find(const char *type, int with_tests)
{
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
		if (!strcmp(handlers[i].type, type))
			return &handlers[i];
	for (size_t i = 0; with_tests && i < sizeof(test_handlers) / sizeof(test_handlers[0]); i++)
		if (!strcmp(test_handlers[i].type, type))
			return &test_handlers[i];
	return NULL;
}
