#include "jwks_keys.h"

#include <string.h>

#include "../core/mem.h"
#include "jwt.h"

static void *keys_parse(const char *doc, size_t n, struct err *e)
{
	struct jwks *k = xcalloc(1, sizeof(*k));
	if (!k) {
		err_set(e, ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (jwks_parse(doc, n, k, e)) {
		xfree(k);
		return NULL;
	}
	return k;
}

static void keys_free(void *set)
{
	jwks_clear(set);
	xfree(set);
}

static const struct jwk *keys_find(const void *set, const char *kid)
{
	const struct jwks *k = set;
	if (!kid)
		return k->n == 1 ? &k->keys[0] : NULL;
	for (int i = 0; i < k->n; i++)
		if (strcmp(k->keys[i].kid, kid) == 0)
			return &k->keys[i];
	return NULL;
}

static int keys_count(const void *set)
{
	return ((const struct jwks *)set)->n;
}

const struct jwks_source_ops jwks_keys_ops = {
	.parse = keys_parse,
	.free = keys_free,
	.find = keys_find,
	.count = keys_count,
};
