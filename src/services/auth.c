#include "auth.h"

#include <sodium.h>
#include <string.h>

int auth_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

int auth_check_master_key(const char *configured, const char *given, struct err *e)
{
	if (!configured || !*configured)
		return err_set(e, ERR_FORBIDDEN,
			       "writes through the API are disabled on this server (no BOOKD_API_KEY is set); "
			       "use the bookd command line");
	if (!given || !*given)
		return err_set(e, ERR_UNAUTHORIZED, "an X-API-Key header is required");
	/* Hash both sides so that the comparison takes the same time whatever
	 * the lengths and wherever the first difference is. */
	unsigned char a[crypto_generichash_BYTES], b[crypto_generichash_BYTES];
	crypto_generichash(a, sizeof(a), (const unsigned char *)configured, strlen(configured), NULL, 0);
	crypto_generichash(b, sizeof(b), (const unsigned char *)given, strlen(given), NULL, 0);
	if (sodium_memcmp(a, b, sizeof(a)) != 0)
		return err_set(e, ERR_UNAUTHORIZED, "invalid API key");
	return 0;
}
