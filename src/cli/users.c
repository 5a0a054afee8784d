#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "../services/users.h"
#include "cli.h"

/* A password from the terminal (no echo) or the first line of stdin. */
static int read_password(char *out, size_t cap)
{
	if (isatty(STDIN_FILENO)) {
		char *p = getpass("Password: ");
		if (!p)
			return -1;
		snprintf(out, cap, "%s", p);
		sodium_memzero(p, strlen(p));
		return 0;
	}
	if (!fgets(out, (int)cap, stdin))
		return -1;
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static int user_or_key(int argc, char **argv, int is_key)
{
	static const struct option opts[] = {
		{ "email", required_argument, NULL, 'e' }, { "user", required_argument, NULL, 'e' },
		{ "role", required_argument, NULL, 'r' },  { "scope", required_argument, NULL, 's' },
		{ "name", required_argument, NULL, 'n' },  { NULL, 0, NULL, 0 },
	};
	const char *sub = argc > 1 ? argv[1] : "";
	const char *email_arg = NULL, *role_arg = NULL, *name = "cli";
	const char *scope_names[4];
	int nscopes = 0, c;
	optind = 2;
	while ((c = getopt_long(argc, argv, "e:r:s:n:", opts, NULL)) != -1) {
		switch (c) {
		case 'e': email_arg = optarg; break;
		case 'r': role_arg = optarg; break;
		case 's': if (nscopes < 4) scope_names[nscopes++] = optarg; break;
		case 'n': name = optarg; break;
		default: return 2;
		}
	}
	int want_email = strcmp(sub, "list") != 0;
	if (is_key ? strcmp(sub, "create") : (strcmp(sub, "add") && strcmp(sub, "list") && strcmp(sub, "set-role"))) {
		fprintf(stderr, "bookd: unknown %s command \"%s\" (see bookd --help)\n", is_key ? "apikey" : "user", sub);
		return 2;
	}
	char email[300] = "";
	struct err e = { 0 };
	if (want_email) {
		if (!email_arg) {
			fprintf(stderr, "bookd: --%s is required\n", is_key ? "user" : "email");
			return 2;
		}
		snprintf(email, sizeof(email), "%s", email_arg);
		if (users_normalize_email(email, sizeof(email), &e)) {
			fprintf(stderr, "bookd: %s: %s\n", email_arg, e.msg);
			return 2;
		}
	}
	enum role role = role_arg ? role_parse(role_arg) : ROLE_READER;
	if (!role) {
		fprintf(stderr, "bookd: --role must be reader, editor or admin\n");
		return 2;
	}
	unsigned scopes = nscopes ? scopes_parse_list(scope_names, nscopes) : SCOPE_READ;
	if (!scopes) {
		fprintf(stderr, "bookd: --scope must be read, write or admin\n");
		return 2;
	}
	struct config cfg;
	cli_load_config(&cfg);
	struct app_runtime rt;
	int rc = 1;
	struct arena a;
	arena_init(&a, 4096);
	if (cli_open(&rt, &cfg, APP_USERS))
		goto out;
	struct users *u = rt.users;
	if (is_key) {
		/* write and admin imply read */
		struct api_key k;
		char key[80];
		if (users_key_create_for(u, &a, email, name, scopes | SCOPE_READ, &k, key, &e) == 0) {
			printf("%s\n", key);
			fprintf(stderr, "API key %s (%s) for %s: shown once, store it now\n", k.prefix, k.scopes, email);
			rc = 0;
		}
	} else if (!strcmp(sub, "add")) {
		char pw[1100];
		struct user usr;
		if (read_password(pw, sizeof(pw))) {
			err_set(&e, ERR_INVALID, "no password given");
		} else if (users_add(u, &a, email, pw, role, &usr, &e) == 0) {
			printf("{\"id\":\"%s\",\"email\":\"%s\",\"role\":\"%s\"}\n", usr.id, usr.email, usr.role);
			rc = 0;
		}
		sodium_memzero(pw, sizeof(pw));
	} else if (!strcmp(sub, "list")) {
		struct user *items;
		int n;
		if (users_list(u, &a, &items, &n, &e) == 0) {
			for (int i = 0; i < n; i++)
				printf("%s  %-8s  %s%s\n", items[i].id, items[i].role, items[i].email,
				       items[i].email_dup ? "  (address shared with another account)" : "");
			rc = 0;
		}
	} else if (!role_arg) {
		err_set(&e, ERR_INVALID, "--role is required");
	} else if (users_set_role(u, email, role, &e) == 0) {
		printf("%s is now %s\n", email, role_name(role));
		rc = 0;
	}
	if (rc && e.msg[0])
		fprintf(stderr, "bookd: %s\n", e.msg);
out:
	arena_free(&a);
	app_close(&rt);
	config_free(&cfg);
	return rc;
}

int cli_user(int argc, char **argv)
{
	return user_or_key(argc, argv, 0);
}

int cli_apikey(int argc, char **argv)
{
	return user_or_key(argc, argv, 1);
}

