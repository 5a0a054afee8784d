/* libFuzzer entry point for the MPEG audio frame scanner (tts_mp3.c), which
 * reads the bytes an OpenAI-compatible speech provider sends: any bytes, fed
 * whole and in pieces whose sizes the input's first byte chooses. It must
 * never read past what it was given, the result must not depend on how the
 * bytes were cut, the time must only grow, and every header it accepts must
 * describe a frame longer than itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "providers/tts_int.h"

static void check_headers(const uint8_t *data, size_t size)
{
	for (size_t i = 0; i + 4 <= size; i++) {
		struct mp3_header h;
		if (mp3_header_parse(data + i, &h))
			continue;
		if (h.length <= 4 || h.sample_rate <= 0 || h.samples <= 0 || h.bitrate <= 0)
			abort();
		if (h.layer < 1 || h.layer > 3 || (h.version != 1 && h.version != 2 && h.version != 25))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	check_headers(data, size);
	struct mp3_scan whole, cut;
	mp3_scan_init(&whole);
	mp3_scan_feed(&whole, data, size);
	if (whole.nhdr > sizeof(whole.hdr) || mp3_scan_ms(&whole) < 0)
		abort();

	size_t step = size ? (size_t)data[0] % 61 + 1 : 1;
	int64_t last = 0;
	mp3_scan_init(&cut);
	for (size_t at = 0; at < size;) {
		/* Copies each piece so the sanitizer sees any read past its end. */
		size_t n = size - at < step ? size - at : step;
		uint8_t *piece = malloc(n);
		if (!piece)
			return 0;
		memcpy(piece, data + at, n);
		mp3_scan_feed(&cut, piece, n);
		free(piece);
		at += n;
		if (cut.nhdr > sizeof(cut.hdr) || mp3_scan_ms(&cut) < last)
			abort();
		last = mp3_scan_ms(&cut);
		step = step * 7 % 61 + 1;
	}
	if (cut.frames != whole.frames || cut.samples_us != whole.samples_us || cut.skip != whole.skip)
		abort();
	return 0;
}
