#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "../core/log.h"
#include "cli.h"

const struct cli_command cli_commands[] = {
	{ "serve", cli_serve,
	  "  serve [--site DIR]        run the HTTP API (default: http://127.0.0.1:8000); with --site, also\n"
	  "                            serve a built static site (a Docusaurus build/) on the same origin\n"
	  "      --site-base-url PATH  the site's baseUrl (default /)\n" },
	{ "import", cli_import,
	  "  import PATH [options]     import a book from a Markdown/MDX folder (Docusaurus docs/),\n"
	  "                            a .md/.mdx file or a .txt file; re-importing updates in place\n"
	  "      --title T  --author A  --language L  --book-id ID  --if-empty\n" },
	{ "worker", cli_worker, "  worker                    run background jobs only (no HTTP), until SIGTERM\n" },
	{ "search", cli_search, "  search QUESTION [--book ID] [--limit N] [--mode keyword|vector|hybrid]\n" },
	{ "reindex", cli_reindex,
	  "  reindex [--book ID]       rebuild the search index (chunks, and vectors with a provider)\n" },
	{ "migrate", cli_migrate, "  migrate                   apply database migrations and print the schema version\n" },
	{ "copy-data", cli_copy_data,
	  "  copy-data --from URL --to URL   copy everything into an empty database\n"
	  "                            (e.g. --from sqlite:bookd-data/bookd.db --to postgres://…)\n" },
	{ "user", cli_user,
	  "  user add --email E [--role reader|editor|admin]   password from the terminal or stdin\n"
	  "  user list | user set-role --email E --role R\n" },
	{ "apikey", cli_apikey,
	  "  apikey create --user E [--scope read|write|admin] [--name N]   prints the key once\n" },
	{ "config", cli_config, "  config                    print the effective configuration (secrets hidden)\n" },
	{ "version", cli_version, "  version                   print the version\n" },
	{ "help", cli_help, "  help                      this text\n" },
};
const int cli_ncommands = (int)(sizeof(cli_commands) / sizeof(cli_commands[0]));

void cli_usage(FILE *f)
{
	fprintf(f, "bookd %s — a server for AI-powered books\n\nUsage: bookd <command> [options]\n\nCommands:\n",
		BOOKD_VERSION);
	for (int i = 0; i < cli_ncommands; i++)
		fputs(cli_commands[i].usage, f);
	fputs("\nConfiguration (environment variables, or a .env file in the working directory):\n", f);
	config_print_help(f);
}

void cli_load_config(struct config *cfg)
{
	char msg[4096];
	if (config_load(cfg, NULL, msg, sizeof(msg))) {
		fprintf(stderr, "bookd: %s\n", msg);
		exit(2);
	}
	log_min_level = log_level_parse(cfg->log_level);
}

int cli_open(struct app_runtime *rt, const struct config *cfg, unsigned parts)
{
	struct err e = { 0 };
	if (app_open(rt, cfg, parts, &e) == 0)
		return 0;
	fprintf(stderr, "bookd: %s\n", e.msg);
	return -1;
}

void cli_progress(void *ctx, int done, int total)
{
	const char *label = ctx;
	int width = 30, fill = total ? done * width / total : width;
	fprintf(stderr, "\r%.40s [%.*s%*s] %d/%d", label, fill, "##############################", width - fill, "",
		done, total);
	if (done == total)
		fputc('\n', stderr);
}

void cli_block_signals(sigset_t *sigs)
{
	sigemptyset(sigs);
	sigaddset(sigs, SIGTERM);
	sigaddset(sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int cli_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("bookd %s\n", BOOKD_VERSION);
	return 0;
}

int cli_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	cli_usage(stdout);
	return 0;
}

int cli_config(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	struct config cfg;
	cli_load_config(&cfg);
	config_print(&cfg, stdout);
	config_free(&cfg);
	return 0;
}
