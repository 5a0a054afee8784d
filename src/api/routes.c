#include "api.h"

/* The route table. Order matters only where patterns overlap: the literal
 * /books/isbn/{isbn} comes before /books/{id}/... patterns of the same length. */
const struct route api_routes[] = {
	{ HTTP_GET, "/health", api_health },
	{ HTTP_GET, "/health/live", api_health_live },
	{ HTTP_GET, "/health/ready", api_health_ready },

	{ HTTP_POST, "/api/v1/auth/register", api_auth_register },
	{ HTTP_POST, "/api/v1/auth/login", api_auth_login },
	{ HTTP_POST, "/api/v1/auth/refresh", api_auth_refresh },
	{ HTTP_POST, "/api/v1/auth/logout", api_auth_logout },
	{ HTTP_GET, "/api/v1/auth/me", api_auth_me },
	{ HTTP_POST, "/api/v1/auth/api-keys", api_keys_create },
	{ HTTP_GET, "/api/v1/auth/api-keys", api_keys_list },
	{ HTTP_DELETE, "/api/v1/auth/api-keys/{key_id}", api_keys_delete },
	{ HTTP_GET, "/api/v1/users/me/preferences", api_prefs_get },
	{ HTTP_PUT, "/api/v1/users/me/preferences", api_prefs_put },
	{ HTTP_PATCH, "/api/v1/users/me/preferences", api_prefs_patch },

	{ HTTP_GET, "/api/v1/books", api_books_list },
	{ HTTP_POST, "/api/v1/books", api_books_create },
	{ HTTP_GET, "/api/v1/books/isbn/{isbn}", api_books_by_isbn },
	{ HTTP_GET, "/api/v1/books/{book_id}", api_books_get },
	{ HTTP_PATCH, "/api/v1/books/{book_id}", api_books_update },
	{ HTTP_DELETE, "/api/v1/books/{book_id}", api_books_delete },

	{ HTTP_GET, "/api/v1/books/{book_id}/chapters", api_chapters_list },
	{ HTTP_POST, "/api/v1/books/{book_id}/chapters", api_chapters_create },
	{ HTTP_GET, "/api/v1/books/{book_id}/chapters/{chapter}", api_chapters_get },
	{ HTTP_PUT, "/api/v1/books/{book_id}/chapters/{chapter}", api_chapters_replace },
	{ HTTP_DELETE, "/api/v1/books/{book_id}/chapters/{chapter}", api_chapters_delete },
};

const size_t api_nroutes = ARRAY_LEN(api_routes);
