#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "../store/copy.h"
#include "../store/db.h"
#include "cli.h"

/* bookd migrate: applies pending migrations, prints the schema version. */
int cli_migrate(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct config cfg;
	cli_load_config(&cfg);
	struct app_runtime rt;
	int rc = cli_open(&rt, &cfg, APP_DB) ? 1 : 0;
	if (!rc)
		printf("schema version %d\n", rt.schema_version);
	app_close(&rt);
	config_free(&cfg);
	return rc;
}

/* bookd copy-data --from URL --to URL: two databases of their own, not the
 * configured one. */
int cli_copy_data(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' }, { "to", required_argument, NULL, 't' }, { NULL, 0, NULL, 0 },
	};
	const char *from = NULL, *to = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "f:t:", opts, NULL)) != -1) {
		if (c == 'f')
			from = optarg;
		else if (c == 't')
			to = optarg;
		else
			return 2;
	}
	if (!from || !to || optind != argc) {
		fprintf(stderr, "bookd: copy-data needs --from URL and --to URL\n");
		return 2;
	}
	struct config cfg;
	cli_load_config(&cfg);
	db *src = NULL, *dst = NULL;
	struct err e = { 0 };
	int v, rc = 1;
	struct copy_table_count counts[COPY_MAX_TABLES];
	int n = 0;
	if (strncmp(from, "sqlite:", 7) == 0 && access(from + 7, R_OK) != 0) {
		fprintf(stderr, "bookd: %s: %s\n", from + 7, strerror(errno));
		goto out;
	}
	if (db_open(&src, from, 2, &e) || db_migrate(src, &v, &e)) {
		fprintf(stderr, "bookd: --from %s: %s\n", strncmp(from, "sqlite:", 7) ? "database" : from, e.msg);
		goto out;
	}
	if (db_open(&dst, to, 2, &e) || db_migrate(dst, &v, &e)) {
		fprintf(stderr, "bookd: --to database: %s\n", e.msg);
		goto out;
	}
	if (db_copy(src, dst, counts, &n, &e)) {
		fprintf(stderr, "bookd: copy-data: %s\n", e.msg);
		goto out;
	}
	printf("{\"copied\":{");
	for (int i = 0; i < n; i++)
		printf("%s\"%s\":%lld", i ? "," : "", counts[i].table, counts[i].rows);
	printf("},\"schema_version\":%d}\n", v);
	rc = 0;
out:
	db_close(src);
	db_close(dst);
	config_free(&cfg);
	return rc;
}
