#include "health.h"

#include <stdio.h>

#include "../providers/blob.h"
#include "../store/db.h"
#include "chat.h"

void health_check(struct db *d, const struct chat *chat, struct blob_store *blob, struct health *out)
{
	struct err e = { 0 };
	out->database_ok = db_ping(d, &e) == 0;
	out->llm[0] = '\0';
	if (chat)
		chat_describe_models(chat, out->llm, sizeof(out->llm));
	out->storage_ok = -1;
	out->storage[0] = '\0';
	if (blob) {
		struct err be = { 0 };
		out->storage_ok = blob_ping(blob, &be) == 0;
		if (out->storage_ok)
			snprintf(out->storage, sizeof(out->storage), "%s", blob_kind(blob));
		else
			snprintf(out->storage, sizeof(out->storage), "%s: %.200s", blob_kind(blob), be.msg);
	}
}
