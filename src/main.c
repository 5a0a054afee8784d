/*
 * bookd's entry point: initialises the libraries that must be initialised
 * once per process, then runs the command named by argv[1] (src/cli/).
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "providers/http_client.h"

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "help";
	/* Whatever bookd creates — the database, its WAL, secrets, uploads — is
	 * the service account's alone. */
	umask(077);
	if (sodium_init() < 0) {
		fprintf(stderr, "bookd: libsodium failed to initialise\n");
		return 1;
	}
	if (phttp_global_init()) {
		fprintf(stderr, "bookd: libcurl failed to initialise\n");
		return 1;
	}
	if (!strcmp(cmd, "--version"))
		cmd = "version";
	else if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
		cmd = "help";
	int rc = 2;
	const struct cli_command *c = NULL;
	for (int i = 0; i < cli_ncommands && !c; i++)
		if (!strcmp(cmd, cli_commands[i].name))
			c = &cli_commands[i];
	if (c)
		rc = c->run(argc - 1, argv + 1); /* every thread it started is joined when it returns */
	else
		fprintf(stderr, "bookd: unknown command \"%s\" (see bookd --help)\n", cmd);
	phttp_global_cleanup();
	return rc;
}
