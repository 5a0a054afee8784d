/*
 * The search form of text: what the keyword index and queries see, so that
 * Arabic-script text (Urdu, Arabic, Persian) is found however a reader types
 * it. The stored text never changes; only the index and the query terms get
 * this form.
 *
 * The mapping is one table, NORM_FROM → NORM_TO, with the semantics of SQL
 * translate(): the i-th character of NORM_FROM becomes the i-th of NORM_TO,
 * and those past the end of NORM_TO are removed. PostgreSQL migrations use
 * the same strings, so both backends agree by construction.
 *
 *   alef      آ أ إ ٱ ٲ ٳ        → ا   (hamza and madda carriers)
 *   waw       ؤ                  → و
 *   yeh       ي ى ې ئ            → ی   (U+064A Arabic, U+0649 alef maksura,
 *                                       U+06D0 Pashto, U+0626 with hamza;
 *                                       U+06CC, the Urdu/Persian form, is kept)
 *   yeh barree ۓ                 → ے   (U+06D2 stays a letter of its own)
 *   kaf       ك                  → ک   (U+0643 → U+06A9 keheh)
 *   heh       ه ۂ ۀ ة ۃ          → ہ   (U+0647 Arabic heh, heh goal with
 *                                       hamza, heh with yeh, teh marbuta and
 *                                       its goal form → U+06C1 heh goal)
 *   digits    ٠–٩ ۰–۹            → 0–9
 *   removed   tatweel U+0640, harakat U+064B–U+065F, superscript alef
 *             U+0670, honorific and Quranic marks U+0610–U+061A,
 *             U+06D6–U+06ED, and ZWNJ U+200C.
 *
 * Do-chashmi heh ھ (U+06BE) is not merged with ہ: Urdu writes aspiration
 * with it (کھ, بھ), so merging would make different words one.
 */
#ifndef BOOKD_NORMALIZE_H
#define BOOKD_NORMALIZE_H

#include <stddef.h>

#include "arena.h"
#include "common.h"

#define NORM_FROM                                                                                  \
	u8"\u0622\u0623\u0625\u0671\u0672\u0673"                                                   \
	u8"\u0624"                                                                                 \
	u8"\u064A\u0649\u06D0\u0626"                                                               \
	u8"\u06D3"                                                                                 \
	u8"\u0643"                                                                                 \
	u8"\u0647\u06C2\u06C0\u0629\u06C3"                                                         \
	u8"\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669"                           \
	u8"\u06F0\u06F1\u06F2\u06F3\u06F4\u06F5\u06F6\u06F7\u06F8\u06F9"                           \
	u8"\u0640"                                                                                 \
	u8"\u064B\u064C\u064D\u064E\u064F\u0650\u0651\u0652\u0653\u0654\u0655\u0656\u0657\u0658"   \
	u8"\u0659\u065A\u065B\u065C\u065D\u065E\u065F\u0670"                                       \
	u8"\u0610\u0611\u0612\u0613\u0614\u0615\u0616\u0617\u0618\u0619\u061A"                     \
	u8"\u06D6\u06D7\u06D8\u06D9\u06DA\u06DB\u06DC\u06DF\u06E0\u06E1\u06E2\u06E3\u06E4\u06E7"   \
	u8"\u06E8\u06EA\u06EB\u06EC\u06ED"                                                         \
	u8"\u200C"

#define NORM_TO                                                                                    \
	u8"\u0627\u0627\u0627\u0627\u0627\u0627"                                                   \
	u8"\u0648"                                                                                 \
	u8"\u06CC\u06CC\u06CC\u06CC"                                                               \
	u8"\u06D2"                                                                                 \
	u8"\u06A9"                                                                                 \
	u8"\u06C1\u06C1\u06C1\u06C1\u06C1"                                                         \
	"0123456789"                                                                               \
	"0123456789"

/* The search form of s[0..n) into *out (from the arena, NUL-terminated).
 * Returns 1 when it differs from s, 0 when s is its own search form (then
 * *out is NULL and nothing is allocated), ERR_INTERNAL when out of memory. */
int norm_search_form(struct arena *a, const char *s, size_t n, char **out) WUR;
/* Same, into a malloc'd string (free with xfree); for callers without an arena. */
int norm_search_form_dup(const char *s, size_t n, char **out) WUR;

#endif
