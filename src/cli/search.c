#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "../core/utf8.h"
#include "../services/search.h"
#include "cli.h"

/* bookd reindex [--book ID]: chunks (and embeds) here, with progress. */
int cli_reindex(int argc, char **argv)
{
	static const struct option opts[] = { { "book", required_argument, NULL, 'b' }, { NULL, 0, NULL, 0 } };
	const char *book = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "b:", opts, NULL)) != -1) {
		if (c != 'b')
			return 2;
		book = optarg;
	}
	struct config cfg;
	cli_load_config(&cfg);
	struct app_runtime rt;
	struct index_stats st = { 0 };
	struct err e = { 0 };
	int rc = 1;
	search_progress_fn bar = isatty(STDERR_FILENO) ? cli_progress : NULL;
	if (cli_open(&rt, &cfg, APP_SEARCH))
		goto out;
	if (search_index_book(rt.search, book, bar, (void *)"chunking", &st, &e) ||
	    search_embed_pending(rt.search, book, bar, (void *)"embedding", NULL, &st, &e)) {
		fprintf(stderr, "bookd: reindex: %s\n", e.msg);
		goto out;
	}
	printf("{\"chapters\":%d,\"chunks\":%d,\"added\":%d,\"moved\":%d,\"removed\":%d,\"unchanged\":%d,"
	       "\"embedded\":%d}\n",
	       st.chapters, st.chunks, st.added, st.moved, st.removed, st.unchanged, st.embedded);
	rc = 0;
out:
	app_close(&rt);
	config_free(&cfg);
	return rc;
}

static int parse_mode(const char *arg, enum search_mode *mode)
{
	if (!arg)
		*mode = SEARCH_DEFAULT;
	else if (!strcmp(arg, "keyword"))
		*mode = SEARCH_KEYWORD;
	else if (!strcmp(arg, "vector"))
		*mode = SEARCH_VECTOR;
	else if (!strcmp(arg, "hybrid"))
		*mode = SEARCH_HYBRID;
	else
		return -1;
	return 0;
}

static void print_hit(const struct search_hit *h)
{
	const struct chunk_row *r = &h->row;
	json_t *o = json_pack("{s:f, s:s, s:I, s:s, s:o, s:o, s:s, s:s}", "score", h->score, "chapter_title",
			      r->chapter_title ? r->chapter_title : "", "chapter_number", (json_int_t)r->chapter_number,
			      "heading", r->heading ? r->heading : "", "anchor",
			      r->anchor ? json_string(r->anchor) : json_null(), "text",
			      json_stringn(r->text, utf8_prefix(r->text, strlen(r->text), 300)), "chunk_id", r->id,
			      "chapter_id", r->chapter_id);
	char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (line)
		printf("%s\n", line);
	free(line);
	json_decref(o);
}

/* bookd search "question" [--book ID] [--limit N] [--mode M]: one JSON line per hit. */
int cli_search(int argc, char **argv)
{
	static const struct option opts[] = { { "book", required_argument, NULL, 'b' },
					      { "limit", required_argument, NULL, 'l' },
					      { "mode", required_argument, NULL, 'm' },
					      { NULL, 0, NULL, 0 } };
	const char *book = NULL, *mode_arg = NULL;
	long limit = 5;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "b:l:m:", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'b': book = optarg; break;
		case 'm': mode_arg = optarg; break;
		case 'l':
			limit = strtol(optarg, &end, 10);
			if (*end || limit < 1 || limit > 50) {
				fprintf(stderr, "bookd: --limit must be 1 to 50\n");
				return 2;
			}
			break;
		default: return 2;
		}
	}
	if (optind != argc - 1 || !*argv[optind]) {
		fprintf(stderr, "bookd: search takes one question (see bookd --help)\n");
		return 2;
	}
	enum search_mode mode;
	if (parse_mode(mode_arg, &mode)) {
		fprintf(stderr, "bookd: --mode must be keyword, vector or hybrid\n");
		return 2;
	}
	struct config cfg;
	cli_load_config(&cfg);
	struct app_runtime rt;
	struct err e = { 0 };
	struct arena a;
	arena_init(&a, 64 * 1024);
	int rc = 1;
	struct search_hit *hits;
	int n;
	if (cli_open(&rt, &cfg, APP_SEARCH) || search_start_sync(rt.search, &e)) {
		if (e.msg[0])
			fprintf(stderr, "bookd: search: %s\n", e.msg);
		goto out;
	}
	if (search_query(rt.search, &a, argv[optind], book, NULL, (int)limit, mode, &hits, &n, &e)) {
		fprintf(stderr, "bookd: search: %s\n", e.msg);
		goto out;
	}
	for (int i = 0; i < n; i++)
		print_hit(&hits[i]);
	rc = 0;
out:
	app_close(&rt);
	arena_free(&a);
	config_free(&cfg);
	return rc;
}
