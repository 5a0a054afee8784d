/* libFuzzer entry point for the .env parser and the config table behind it
 * (config_parse_env_text): any bytes as a .env file. It must never crash or
 * leak, and a failure must come with a message naming what is wrong. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet) {
		log_min_level = LOG_ERROR + 1; /* unknown-name warnings are not findings */
		quiet = 1;
	}
	if (size > 1 << 18)
		return 0;
	char msg[4096];
	int rc = config_parse_env_text((const char *)data, size, msg, sizeof(msg));
	if (rc && !msg[0])
		abort();
	if (strlen(msg) >= sizeof(msg))
		abort();
	return 0;
}
