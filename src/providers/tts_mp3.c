/*
 * MPEG audio frame headers, read as the bytes arrive: how long the audio a
 * provider sends is, without decoding it. Frames are counted by their
 * headers (sync, version, layer, bitrate, sample rate, padding give the
 * length and the samples), an ID3v2 tag at the start is skipped by its
 * declared size, a first frame that is a Xing/Info tag holds no audio, and
 * bytes that do not start a valid frame are dropped one at a time until one
 * does (resynchronisation). Free-format streams are not supported.
 */
#include "tts_int.h"

#include <string.h>

static const short bitrates[2][3][15] = {
	{ /* MPEG-1: layers 1, 2, 3 */
	  { 0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448 },
	  { 0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384 },
	  { 0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320 } },
	{ /* MPEG-2 and 2.5 */
	  { 0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256 },
	  { 0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160 },
	  { 0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160 } },
};

static const int rates[3] = { 44100, 48000, 32000 };

int mp3_header_parse(const unsigned char *p, struct mp3_header *h)
{
	if (p[0] != 0xFF || (p[1] & 0xE0) != 0xE0)
		return -1;
	int v = (p[1] >> 3) & 3, l = (p[1] >> 1) & 3, bi = p[2] >> 4, si = (p[2] >> 2) & 3;
	if (v == 1 || l == 0 || bi == 0 || bi == 15 || si == 3)
		return -1;
	h->version = v == 3 ? 1 : v == 2 ? 2 : 25;
	h->layer = 4 - l;
	h->bitrate = bitrates[h->version == 1 ? 0 : 1][h->layer - 1][bi];
	h->sample_rate = rates[si] >> (h->version == 1 ? 0 : h->version == 2 ? 1 : 2);
	h->channels = (p[3] >> 6) == 3 ? 1 : 2;
	int pad = (p[2] >> 1) & 1;
	long br = (long)h->bitrate * 1000;
	if (h->layer == 1) {
		h->samples = 384;
		h->length = (size_t)((12 * br / h->sample_rate + pad) * 4);
	} else if (h->layer == 2 || h->version == 1) {
		h->samples = 1152;
		h->length = (size_t)(144 * br / h->sample_rate + pad);
	} else {
		h->samples = 576;
		h->length = (size_t)(72 * br / h->sample_rate + pad);
	}
	return 0;
}

void mp3_scan_init(struct mp3_scan *s) { memset(s, 0, sizeof(*s)); }

/* Where a Xing/Info tag sits in a layer III frame: after its side info. */
static size_t xing_offset(const struct mp3_header *h)
{
	if (h->version == 1)
		return 4 + (h->channels == 1 ? 17 : 32);
	return 4 + (h->channels == 1 ? 9 : 17);
}

/* Consumes what hdr[] holds as far as it can. */
static void scan_step(struct mp3_scan *s)
{
	if (!s->started) {
		if (s->nhdr < 10)
			return;
		s->started = 1;
		const unsigned char *p = s->hdr;
		if (p[0] == 'I' && p[1] == 'D' && p[2] == '3') {
			size_t size = ((size_t)(p[6] & 0x7F) << 21) | ((size_t)(p[7] & 0x7F) << 14) |
				      ((size_t)(p[8] & 0x7F) << 7) | (size_t)(p[9] & 0x7F);
			s->skip = size + ((p[5] & 0x10) ? 10 : 0);
			s->nhdr = 0;
			return;
		}
	}
	while (s->nhdr >= 4) {
		struct mp3_header h;
		if (mp3_header_parse(s->hdr, &h) ||
		    (s->first_done && ((s->hdr[1] & 0xFE) != s->ref[0] || (s->hdr[2] & 0x0C) != s->ref[1]))) {
			memmove(s->hdr, s->hdr + 1, --s->nhdr);
			continue;
		}
		size_t need = 4;
		if (!s->first_done && h.layer == 3)
			need = xing_offset(&h) + 4 < h.length ? xing_offset(&h) + 4 : h.length;
		if (s->nhdr < need)
			return;
		int tag = 0;
		if (!s->first_done && h.layer == 3 && need == xing_offset(&h) + 4) {
			const unsigned char *t = s->hdr + xing_offset(&h);
			tag = !memcmp(t, "Xing", 4) || !memcmp(t, "Info", 4);
		}
		s->first_done = 1;
		s->ref[0] = s->hdr[1] & 0xFE;
		s->ref[1] = s->hdr[2] & 0x0C;
		if (!tag) {
			s->frames++;
			s->samples_us += (int64_t)h.samples * 1000000 / h.sample_rate;
			s->sample_rate = h.sample_rate;
		}
		s->skip = h.length > s->nhdr ? h.length - s->nhdr : 0;
		s->nhdr = 0;
		return;
	}
}

void mp3_scan_feed(struct mp3_scan *s, const void *data, size_t n)
{
	const unsigned char *p = data;
	while (n) {
		if (s->skip) {
			size_t k = s->skip < n ? s->skip : n;
			p += k;
			n -= k;
			s->skip -= k;
			continue;
		}
		s->hdr[s->nhdr++] = *p++;
		n--;
		scan_step(s);
	}
}

int64_t mp3_scan_ms(const struct mp3_scan *s) { return s->samples_us / 1000; }
