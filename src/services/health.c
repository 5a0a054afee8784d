#include "health.h"

#include "../store/db.h"
#include "chat.h"

void health_check(struct db *d, const struct chat *chat, struct health *out)
{
	struct err e = { 0 };
	out->database_ok = db_ping(d, &e) == 0;
	out->llm[0] = '\0';
	if (chat)
		chat_describe_models(chat, out->llm, sizeof(out->llm));
}
