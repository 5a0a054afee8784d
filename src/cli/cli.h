/*
 * bookd's commands, one file each. main.c dispatches to them; each parses
 * its own options, loads the configuration and asks the runtime (app.h) for
 * the parts it needs. Exit codes: 0 success, 1 failure at run time, 2 bad
 * usage or configuration.
 */
#ifndef BOOKD_CLI_H
#define BOOKD_CLI_H

#include <stdio.h>

#include "../app.h"
#include "../core/config.h"

#define BOOKD_VERSION "0.1.0"

typedef int (*cli_fn)(int argc, char **argv);

struct cli_command {
	const char *name;
	cli_fn run;
	const char *usage; /* one or more lines for --help */
};

extern const struct cli_command cli_commands[];
extern const int cli_ncommands;

void cli_usage(FILE *f);
/* Loads the configuration, or prints every bad value and exits 2. */
void cli_load_config(struct config *cfg);
/* Opens the runtime's `parts`; prints why it could not and returns -1. */
int cli_open(struct app_runtime *rt, const struct config *cfg, unsigned parts);
/* A progress bar on stderr, for the long commands (ctx: a label). */
void cli_progress(void *ctx, int done, int total);
/* Blocks SIGTERM and SIGINT (waited for with sigwait) and ignores SIGPIPE;
 * call before any thread starts. */
void cli_block_signals(sigset_t *sigs);

int cli_serve(int argc, char **argv);
int cli_worker(int argc, char **argv);
int cli_import(int argc, char **argv);
int cli_search(int argc, char **argv);
int cli_reindex(int argc, char **argv);
int cli_migrate(int argc, char **argv);
int cli_copy_data(int argc, char **argv);
int cli_user(int argc, char **argv);
int cli_apikey(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_version(int argc, char **argv);
int cli_help(int argc, char **argv);

#endif
