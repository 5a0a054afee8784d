/* Unit tests for core/config: defaults, environment, .env files, validation
 * messages and config_print's handling of secrets. */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/config.h"

static const char *const vars[] = {
	"BOOKD_HOST",	      "BOOKD_PORT",	      "BOOKD_DATA_DIR",	       "DATABASE_URL",
	"BOOKD_API_KEY",      "BOOKD_CORS_ORIGINS",    "BOOKD_MAX_BODY",	       "BOOKD_SHUTDOWN_TIMEOUT",
	"BOOKD_THREADS",      "BOOKD_CONN_TIMEOUT",    "BOOKD_MAX_CONNECTIONS", "BOOKD_LOG_LEVEL",
	"BOOKD_CACHE_SIZE",   "BOOKD_DB_POOL",
};

/* Per-test state: a temp .env path (not created unless a test writes it). */
struct fixture {
	char dir[64];
	char env[128];
	char missing[128];
};

/* Unsets every BOOKD_* variable (and DATABASE_URL), including any added to
 * config.c after these tests were written. */
static void clear_env(void)
{
	for (;;) {
		char name[256] = "";
		for (char **ep = environ; *ep; ep++) {
			size_t n = strcspn(*ep, "=");
			if ((strncmp(*ep, "BOOKD_", 6) == 0 || strncmp(*ep, "DATABASE_URL=", 13) == 0) &&
			    n < sizeof(name)) {
				memcpy(name, *ep, n);
				name[n] = '\0';
				break;
			}
		}
		if (!name[0])
			break;
		unsetenv(name);
	}
	for (size_t i = 0; i < ARRAY_LEN(vars); i++)
		unsetenv(vars[i]);
}

static int setup(void **state)
{
	clear_env();
	struct fixture *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/bookd-config-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	snprintf(f->env, sizeof(f->env), "%s/test.env", f->dir);
	snprintf(f->missing, sizeof(f->missing), "%s/does-not-exist.env", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	clear_env();
	unlink(f->env);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void write_env(const struct fixture *f, const char *text)
{
	FILE *fp = fopen(f->env, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* Loads with no .env, asserting success. */
static void load_ok(struct fixture *f, const char *env_file, struct config *c)
{
	char msg[1024];
	int rc = config_load(c, env_file ? env_file : f->missing, msg, sizeof(msg));
	if (rc != 0)
		print_error("config_load failed: %s\n", msg);
	assert_int_equal(rc, 0);
}

/* Loads, asserting failure; the message is returned in msg. */
static void load_fails(struct fixture *f, const char *env_file, char *msg, size_t msglen)
{
	struct config c;
	int rc = config_load(&c, env_file ? env_file : f->missing, msg, msglen);
	assert_int_equal(rc, -1);
	/* On failure everything was freed. */
	assert_null(c.host);
	assert_null(c.api_key);
}

/* Runs config_print into a malloc'ed string. */
static char *print_config(const struct config *c)
{
	char *out = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&out, &n);
	assert_non_null(fp);
	config_print(c, fp);
	assert_int_equal(fclose(fp), 0);
	assert_non_null(out);
	return out;
}

/* ---- defaults ------------------------------------------------------------- */

static void test_defaults(void **state)
{
	struct config c;
	load_ok(*state, NULL, &c);
	assert_int_equal(c.port, 8000);
	assert_string_equal(c.host, "127.0.0.1");
	assert_int_equal(c.max_body, 1048576);
	assert_string_equal(c.data_dir, "./bookd-data");
	assert_string_equal(c.database_url, "");
	assert_string_equal(c.api_key, "");
	assert_string_equal(c.cors_origins, "http://localhost:3000");
	assert_string_equal(c.log_level, "info");
	assert_int_equal(c.shutdown_timeout, 30);
	assert_int_equal(c.conn_timeout, 30);
	assert_int_equal(c.max_connections, 1024);
	assert_int_equal(c.cache_bytes, (size_t)64 << 20);
	assert_int_equal(c.db_pool, 16);
	config_free(&c);
}

static void test_threads_zero_means_cores(void **state)
{
	struct config c;
	load_ok(*state, NULL, &c);
	assert_true(c.threads >= 2);
	config_free(&c);
}

static void test_config_free_nulls_strings(void **state)
{
	struct config c;
	load_ok(*state, NULL, &c);
	config_free(&c);
	assert_null(c.host);
	assert_null(c.data_dir);
	assert_null(c.log_level);
}

/* ---- environment ---------------------------------------------------------- */

static void test_env_overrides_defaults(void **state)
{
	setenv("BOOKD_PORT", "9090", 1);
	setenv("BOOKD_HOST", "0.0.0.0", 1);
	setenv("BOOKD_THREADS", "3", 1);
	struct config c;
	load_ok(*state, NULL, &c);
	assert_int_equal(c.port, 9090);
	assert_string_equal(c.host, "0.0.0.0");
	assert_int_equal(c.threads, 3);
	config_free(&c);
}

static void test_max_body_mega_suffix(void **state)
{
	setenv("BOOKD_MAX_BODY", "2M", 1);
	struct config c;
	load_ok(*state, NULL, &c);
	assert_int_equal(c.max_body, 2097152);
	config_free(&c);
}

static void test_max_body_other_suffixes(void **state)
{
	static const struct {
		const char *in;
		size_t want;
	} cases[] = {
		{ "512", 512 },	       { "64K", 65536 },     { "64k", 65536 },
		{ "1MiB", 1048576 },  { "3MB", 3145728 },  { "1G", 1073741824 },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		setenv("BOOKD_MAX_BODY", cases[i].in, 1);
		struct config c;
		load_ok(*state, NULL, &c);
		if (c.max_body != cases[i].want)
			print_error("BOOKD_MAX_BODY=%s\n", cases[i].in);
		assert_int_equal(c.max_body, cases[i].want);
		config_free(&c);
	}
}

static void test_max_body_out_of_range(void **state)
{
	char msg[1024];
	setenv("BOOKD_MAX_BODY", "2G", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_MAX_BODY");
	setenv("BOOKD_MAX_BODY", "0", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_MAX_BODY");
	setenv("BOOKD_MAX_BODY", "-5", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_MAX_BODY");
}

static void test_cache_size_zero_allowed(void **state)
{
	setenv("BOOKD_CACHE_SIZE", "0", 1);
	struct config c;
	load_ok(*state, NULL, &c);
	assert_int_equal(c.cache_bytes, 0);
	config_free(&c);
}

static void test_invalid_port_and_body_both_named(void **state)
{
	char msg[1024];
	setenv("BOOKD_PORT", "99999", 1);
	setenv("BOOKD_MAX_BODY", "abc", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_PORT");
	assert_contains(msg, "99999");
	assert_contains(msg, "BOOKD_MAX_BODY");
	assert_contains(msg, "abc");
	assert_contains(msg, "1..65535");
}

static void test_port_not_a_number(void **state)
{
	char msg[512];
	setenv("BOOKD_PORT", "80x", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_PORT=\"80x\"");
}

static void test_port_empty(void **state)
{
	char msg[512];
	setenv("BOOKD_PORT", "", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_PORT");
}

static void test_port_zero_rejected(void **state)
{
	char msg[512];
	setenv("BOOKD_PORT", "0", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_PORT");
}

static void test_port_bounds_accepted(void **state)
{
	struct config c;
	setenv("BOOKD_PORT", "65535", 1);
	load_ok(*state, NULL, &c);
	assert_int_equal(c.port, 65535);
	config_free(&c);
	setenv("BOOKD_PORT", "1", 1);
	load_ok(*state, NULL, &c);
	assert_int_equal(c.port, 1);
	config_free(&c);
}

static void test_bad_log_level(void **state)
{
	char msg[512];
	setenv("BOOKD_LOG_LEVEL", "verbose", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_LOG_LEVEL");
	assert_contains(msg, "verbose");
}

static void test_empty_host_rejected(void **state)
{
	char msg[512];
	setenv("BOOKD_HOST", "", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_HOST");
}

static void test_three_errors_all_named(void **state)
{
	char msg[1024];
	setenv("BOOKD_PORT", "-1", 1);
	setenv("BOOKD_DB_POOL", "many", 1);
	setenv("BOOKD_LOG_LEVEL", "loud", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_PORT");
	assert_contains(msg, "BOOKD_DB_POOL");
	assert_contains(msg, "BOOKD_LOG_LEVEL");
}

static void test_short_message_buffer_is_terminated(void **state)
{
	char msg[16];
	memset(msg, 'Z', sizeof(msg));
	setenv("BOOKD_PORT", "99999", 1);
	setenv("BOOKD_MAX_BODY", "abc", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_non_null(memchr(msg, '\0', sizeof(msg)));
}

/* ---- .env files ----------------------------------------------------------- */

static void test_env_file_loaded(void **state)
{
	struct fixture *f = *state;
	write_env(f, "BOOKD_PORT=9001\nBOOKD_HOST=10.0.0.1\nBOOKD_MAX_BODY=4K\n");
	struct config c;
	load_ok(f, f->env, &c);
	assert_int_equal(c.port, 9001);
	assert_string_equal(c.host, "10.0.0.1");
	assert_int_equal(c.max_body, 4096);
	config_free(&c);
}

static void test_environment_wins_over_env_file(void **state)
{
	struct fixture *f = *state;
	write_env(f, "BOOKD_PORT=9001\nBOOKD_HOST=10.0.0.1\n");
	setenv("BOOKD_PORT", "7000", 1);
	struct config c;
	load_ok(f, f->env, &c);
	assert_int_equal(c.port, 7000);
	assert_string_equal(c.host, "10.0.0.1");
	config_free(&c);
}

static void test_env_file_missing_is_fine(void **state)
{
	struct fixture *f = *state;
	struct config c;
	load_ok(f, f->missing, &c);
	assert_int_equal(c.port, 8000);
	config_free(&c);
}

static void test_env_file_comments_and_blank_lines(void **state)
{
	struct fixture *f = *state;
	write_env(f, "# a comment\n"
		     "\n"
		     "   # indented comment BOOKD_PORT=1\n"
		     "BOOKD_PORT=9002\n"
		     "#BOOKD_HOST=9.9.9.9\n");
	struct config c;
	load_ok(f, f->env, &c);
	assert_int_equal(c.port, 9002);
	assert_string_equal(c.host, "127.0.0.1");
	config_free(&c);
}

static void test_env_file_trailing_comment(void **state)
{
	struct fixture *f = *state;
	write_env(f, "BOOKD_PORT=9003 # the port\n"
		     "BOOKD_CORS_ORIGINS=http://a.example#frag\n");
	struct config c;
	load_ok(f, f->env, &c);
	assert_int_equal(c.port, 9003);
	/* '#' without a space before it is part of the value. */
	assert_string_equal(c.cors_origins, "http://a.example#frag");
	config_free(&c);
}

static void test_env_file_double_quotes(void **state)
{
	struct fixture *f = *state;
	write_env(f, "BOOKD_DATA_DIR=\"/srv/my books # not a comment\"\n");
	struct config c;
	load_ok(f, f->env, &c);
	assert_string_equal(c.data_dir, "/srv/my books # not a comment");
	config_free(&c);
}

static void test_env_file_single_quotes(void **state)
{
	struct fixture *f = *state;
	write_env(f, "BOOKD_LOG_LEVEL='debug'\n");
	struct config c;
	load_ok(f, f->env, &c);
	assert_string_equal(c.log_level, "debug");
	config_free(&c);
}

static void test_env_file_quoted_value_then_comment(void **state)
{
	struct fixture *f = *state;
	write_env(f, "BOOKD_HOST=\"0.0.0.0\" # listen everywhere\n");
	struct config c;
	load_ok(f, f->env, &c);
	char host[64];
	snprintf(host, sizeof(host), "%s", c.host);
	config_free(&c);
	/* The quotes delimit the value; the comment after them is not part of it. */
	assert_string_equal(host, "0.0.0.0");
}

static void test_env_file_export_and_spaces(void **state)
{
	struct fixture *f = *state;
	write_env(f, "export BOOKD_PORT=9004\n"
		     "BOOKD_HOST =  192.168.1.1  \n");
	struct config c;
	load_ok(f, f->env, &c);
	assert_int_equal(c.port, 9004);
	assert_string_equal(c.host, "192.168.1.1");
	config_free(&c);
}

static void test_env_file_crlf(void **state)
{
	struct fixture *f = *state;
	write_env(f, "BOOKD_PORT=9005\r\nBOOKD_LOG_LEVEL=warn\r\n");
	struct config c;
	load_ok(f, f->env, &c);
	assert_int_equal(c.port, 9005);
	assert_string_equal(c.log_level, "warn");
	config_free(&c);
}

static void test_env_file_unknown_names_ignored(void **state)
{
	struct fixture *f = *state;
	write_env(f, "NOT_BOOKD=1\nBOOKD_PORTX=5\nno equals sign here\nBOOKD_PORT=9006\n");
	struct config c;
	load_ok(f, f->env, &c);
	assert_int_equal(c.port, 9006);
	assert_null(getenv("NOT_BOOKD")); /* .env values do not leak into the environment */
	config_free(&c);
}

static void test_env_file_last_assignment_wins(void **state)
{
	struct fixture *f = *state;
	write_env(f, "BOOKD_PORT=1111\nBOOKD_PORT=2222\n");
	struct config c;
	load_ok(f, f->env, &c);
	assert_int_equal(c.port, 2222);
	config_free(&c);
}

static void test_env_file_invalid_value_reported(void **state)
{
	struct fixture *f = *state;
	char msg[512];
	write_env(f, "BOOKD_CONN_TIMEOUT=forever\n");
	load_fails(f, f->env, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_CONN_TIMEOUT");
	assert_contains(msg, "forever");
}

/* ---- config_print --------------------------------------------------------- */

static void test_print_hides_api_key(void **state)
{
	setenv("BOOKD_API_KEY", "super-secret-key", 1);
	struct config c;
	load_ok(*state, NULL, &c);
	assert_string_equal(c.api_key, "super-secret-key");
	char *out = print_config(&c);
	assert_contains(out, "BOOKD_API_KEY=********\n");
	assert_not_contains(out, "super-secret-key");
	free(out);
	config_free(&c);
}

static void test_print_hides_database_url(void **state)
{
	setenv("DATABASE_URL", "sqlite:/tmp/secret-path.db", 1);
	struct config c;
	load_ok(*state, NULL, &c);
	char *out = print_config(&c);
	assert_contains(out, "DATABASE_URL=********\n");
	assert_not_contains(out, "secret-path");
	free(out);
	config_free(&c);
}

static void test_print_unset_secret_is_empty(void **state)
{
	struct config c;
	load_ok(*state, NULL, &c);
	char *out = print_config(&c);
	assert_contains(out, "BOOKD_API_KEY=\n");
	free(out);
	config_free(&c);
}

static void test_print_values(void **state)
{
	setenv("BOOKD_MAX_BODY", "2M", 1);
	setenv("BOOKD_PORT", "8123", 1);
	struct config c;
	load_ok(*state, NULL, &c);
	char *out = print_config(&c);
	assert_contains(out, "BOOKD_PORT=8123\n");
	assert_contains(out, "BOOKD_MAX_BODY=2097152\n");
	assert_contains(out, "BOOKD_HOST=127.0.0.1\n");
	free(out);
	config_free(&c);
}

static void test_invalid_secret_not_echoed(void **state)
{
	/* A secret never appears in an error message, even a bad one. */
	char msg[512];
	setenv("BOOKD_API_KEY", "top-secret", 1);
	setenv("BOOKD_PORT", "nope", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_not_contains(msg, "top-secret");
}

static void test_short_jwt_secret_not_echoed(void **state)
{
	char msg[512];
	setenv("BOOKD_JWT_SECRET", "tooshortsecret", 1);
	load_fails(*state, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_JWT_SECRET");
	assert_not_contains(msg, "tooshortsecret");
}

static void test_print_help_lists_every_variable(void **state)
{
	char *out = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&out, &n);
	assert_non_null(fp);
	config_print_help(fp);
	assert_int_equal(fclose(fp), 0);
	for (size_t i = 0; i < ARRAY_LEN(vars); i++)
		assert_contains(out, vars[i]);
	assert_contains(out, "8000");
	free(out);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* ---- language models, lengths, long lines ---------------------------------- */

static void test_llm_chain_from_env_file(void **state)
{
	struct fixture *f = *state;
	write_env(f, "BOOKD_LLM_PROVIDERS=p1:m1, anthropic:claude-x\n"
		     "BOOKD_LLM_P1_URL=http://127.0.0.1:9/v1\n"
		     "BOOKD_LLM_P1_KEY=\"k1\"\n"
		     "BOOKD_LLM_P1_TIMEOUT=7\n"
		     "BOOKD_LLM_TRIES=5\n");
	setenv("BOOKD_LLM_ANTHROPIC_KEY", "k2", 1);
	struct config c;
	load_ok(f, f->env, &c);
	assert_int_equal(c.nllm, 2);
	assert_int_equal(c.llm_tries, 5);
	assert_string_equal(c.llm[0].name, "p1");
	assert_string_equal(c.llm[0].model, "m1");
	assert_string_equal(c.llm[0].url, "http://127.0.0.1:9/v1");
	assert_string_equal(c.llm[0].key, "k1");
	assert_string_equal(c.llm[0].api, "openai");
	assert_int_equal(c.llm[0].timeout, 7);
	assert_string_equal(c.llm[1].url, "https://api.anthropic.com/v1");
	assert_string_equal(c.llm[1].api, "anthropic");
	assert_string_equal(c.llm[1].key, "k2");
	assert_int_equal(c.llm[1].timeout, 30);
	char *out = print_config(&c);
	assert_contains(out, "BOOKD_LLM_P1_URL=http://127.0.0.1:9/v1\n");
	assert_contains(out, "BOOKD_LLM_P1_KEY=********\n");
	assert_not_contains(out, "k1");
	free(out);
	config_free(&c);
}

static void test_llm_bad_values_all_named(void **state)
{
	struct fixture *f = *state;
	setenv("BOOKD_LLM_PROVIDERS", "p1:m1,p2:m2,bad name:x,nocolon", 1);
	setenv("BOOKD_LLM_P1_API", "grpc", 1);
	setenv("BOOKD_LLM_P2_URL", "http://x/v1", 1);
	setenv("BOOKD_LLM_P2_TIMEOUT", "0", 1);
	char msg[2048];
	load_fails(f, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_LLM_P1_URL is required");
	assert_contains(msg, "BOOKD_LLM_P1_API=\"grpc\"");
	assert_contains(msg, "BOOKD_LLM_P2_TIMEOUT");
	assert_contains(msg, "\"bad name\"");
	assert_contains(msg, "\"nocolon\" is not NAME:MODEL");
}

static void test_too_long_value_refused(void **state)
{
	struct fixture *f = *state;
	char secret[301];
	memset(secret, 's', 300);
	secret[300] = '\0';
	setenv("BOOKD_JWT_SECRET", secret, 1);
	char msg[1024];
	load_fails(f, NULL, msg, sizeof(msg));
	assert_contains(msg, "BOOKD_JWT_SECRET is 300 bytes long; at most 255");
	assert_not_contains(msg, "ssssssss");
	secret[255] = '\0';
	setenv("BOOKD_JWT_SECRET", secret, 1);
	struct config c;
	load_ok(f, NULL, &c);
	assert_int_equal(strlen(c.jwt_secret), 255);
	config_free(&c);
}

static void test_env_file_long_line_refused(void **state)
{
	struct fixture *f = *state;
	size_t n = 70000;
	char *text = malloc(n + 64);
	assert_non_null(text);
	memcpy(text, "BOOKD_PORT=9000\nBOOKD_CORS_ORIGINS=", 35);
	memset(text + 35, 'x', n);
	memcpy(text + 35 + n, "BOOKD_PORT=1\n", 14);
	text[35 + n + 14] = '\0';
	write_env(f, text);
	free(text);
	char msg[1024];
	load_fails(f, f->env, msg, sizeof(msg));
	assert_contains(msg, "line 2 is longer than 65536 bytes");
	/* just under the line cap: read whole */
	write_env(f, "BOOKD_CORS_ORIGINS=http://a.example,http://b.example\n");
	struct config c;
	load_ok(f, f->env, &c);
	assert_string_equal(c.cors_origins, "http://a.example,http://b.example");
	config_free(&c);
}

static void test_parse_env_text_entry_point(void **state)
{
	(void)state;
	char msg[512];
	const char *ok = "BOOKD_PORT=8080\nBOOKD_LLM_PROVIDERS=openai:gpt\n";
	assert_int_equal(config_parse_env_text(ok, strlen(ok), msg, sizeof(msg)), 0);
	const char *bad = "BOOKD_PORT=x\nBOOKD_LLM_PROVIDERS=p:m\n";
	assert_int_equal(config_parse_env_text(bad, strlen(bad), msg, sizeof(msg)), -1);
	assert_contains(msg, "BOOKD_PORT");
	assert_contains(msg, "BOOKD_LLM_P_URL");
	assert_int_equal(config_parse_env_text("", 0, msg, sizeof(msg)), 0);
}

static void test_help_lists_llm_patterns(void **state)
{
	(void)state;
	char *out = NULL;
	size_t n = 0;
	FILE *fp = open_memstream(&out, &n);
	assert_non_null(fp);
	config_print_help(fp);
	assert_int_equal(fclose(fp), 0);
	assert_contains(out, "BOOKD_LLM_PROVIDERS");
	assert_contains(out, "BOOKD_LLM_<NAME>_KEY");
	assert_contains(out, "BOOKD_LLM_<NAME>_TIMEOUT");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_defaults),
		T(test_threads_zero_means_cores),
		T(test_config_free_nulls_strings),
		T(test_env_overrides_defaults),
		T(test_max_body_mega_suffix),
		T(test_max_body_other_suffixes),
		T(test_max_body_out_of_range),
		T(test_cache_size_zero_allowed),
		T(test_invalid_port_and_body_both_named),
		T(test_port_not_a_number),
		T(test_port_empty),
		T(test_port_zero_rejected),
		T(test_port_bounds_accepted),
		T(test_bad_log_level),
		T(test_empty_host_rejected),
		T(test_three_errors_all_named),
		T(test_short_message_buffer_is_terminated),
		T(test_env_file_loaded),
		T(test_environment_wins_over_env_file),
		T(test_env_file_missing_is_fine),
		T(test_env_file_comments_and_blank_lines),
		T(test_env_file_trailing_comment),
		T(test_env_file_double_quotes),
		T(test_env_file_single_quotes),
		T(test_env_file_quoted_value_then_comment),
		T(test_env_file_export_and_spaces),
		T(test_env_file_crlf),
		T(test_env_file_unknown_names_ignored),
		T(test_env_file_last_assignment_wins),
		T(test_env_file_invalid_value_reported),
		T(test_print_hides_api_key),
		T(test_print_hides_database_url),
		T(test_print_unset_secret_is_empty),
		T(test_print_values),
		T(test_invalid_secret_not_echoed),
		T(test_short_jwt_secret_not_echoed),
		T(test_print_help_lists_every_variable),
		T(test_llm_chain_from_env_file),
		T(test_llm_bad_values_all_named),
		T(test_too_long_value_refused),
		T(test_env_file_long_line_refused),
		T(test_parse_env_text_entry_point),
		T(test_help_lists_llm_patterns),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
