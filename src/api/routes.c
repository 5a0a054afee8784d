#include "api.h"

/* The route table. Order matters only where patterns overlap: the literal
 * /books/isbn/{isbn} comes before /books/{id}/... patterns of the same length. */
const struct route api_routes[] = {
	{ HTTP_GET, "/health", api_health },
	{ HTTP_GET, "/health/live", api_health_live },
	{ HTTP_GET, "/health/ready", api_health_ready },

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
