#include <getopt.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "../services/books.h"
#include "../services/ingest.h"
#include "../services/jobs.h"
#include "cli.h"

/* Queues the new or changed book for indexing: it is searchable once a
 * worker (bookd serve or bookd worker) has indexed it. */
static void queue_index(struct app_runtime *rt, const char *book_id)
{
	struct arena a;
	arena_init(&a, 4096);
	json_t *payload = json_pack("{s:s}", "book_id", book_id);
	struct job jb;
	int existing;
	struct err e = { 0 };
	if (!payload || jobs_submit(rt->jobs, &a, NULL, "book.index", payload, NULL, &jb, &existing, &e))
		fprintf(stderr, "bookd: imported, but not queued for indexing: %s\n", payload ? e.msg : "out of memory");
	json_decref(payload);
	arena_free(&a);
}

int cli_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "title", required_argument, NULL, 't' },   { "author", required_argument, NULL, 'a' },
		{ "language", required_argument, NULL, 'l' }, { "book-id", required_argument, NULL, 'b' },
		{ "if-empty", no_argument, NULL, 'e' },       { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ingest_opts io = { 0 };
	int if_empty = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "t:a:l:b:eh", opts, NULL)) != -1) {
		switch (c) {
		case 't': io.title = optarg; break;
		case 'a': io.author = optarg; break;
		case 'l': io.language = optarg; break;
		case 'b': io.book_id = optarg; break;
		case 'e': if_empty = 1; break;
		case 'h': cli_usage(stdout); return 0;
		default: return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "bookd: import takes one PATH (see bookd --help)\n");
		return 2;
	}
	const char *path = argv[optind];
	struct config cfg;
	cli_load_config(&cfg);
	struct app_runtime rt;
	struct err e = { 0 };
	int rc = 1;
	if (cli_open(&rt, &cfg, APP_JOBS))
		goto out;
	if (if_empty) {
		int any = 0;
		if (books_any(rt.db, &any, &e)) {
			fprintf(stderr, "bookd: database: %s\n", e.msg);
			goto out;
		}
		if (any) {
			rc = 0;
			goto out;
		}
	}
	if (isatty(STDERR_FILENO)) {
		io.progress = cli_progress;
		io.progress_ctx = (void *)path;
	}
	struct ingest_result r;
	if (ingest_path(rt.db, path, &io, &r, &e)) {
		fprintf(stderr, "bookd: %s\n", e.msg);
		goto out;
	}
	queue_index(&rt, r.book_id);
	for (int i = 0; i < r.nwarnings; i++)
		fprintf(stderr, "bookd: warning: %s: %s: %s\n", r.warnings[i].file, r.warnings[i].action,
			r.warnings[i].message);
	if (r.warnings_omitted)
		fprintf(stderr, "bookd: warning: %d more files skipped or cleaned\n", r.warnings_omitted);
	json_t *o = ingest_result_json(&r);
	ingest_result_free(&r);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(o);
	rc = 0;
out:
	app_close(&rt);
	config_free(&cfg);
	return rc;
}
