#!/bin/sh
# Speech: seconds of audio per CPU second for espeak-ng + LAME on one core
# (target >= 150x), espeak-ng alone and LAME alone, and peak RSS while
# narrating one long chapter (target < 60 MB). Writes bench/out/tts.json.
# POSIX sh: `sh bench/tts.sh`.
#
# Environment:
#   BENCH_TTS_KB   size of the long chapter in KB (default 40: ~6,500 words)
#   B              build tree whose objects are linked (default build)
#   CC             C compiler (default cc)
set -eu

cd "$(dirname "$0")/.."
B=${B:-build}
CC=${CC:-cc}
KB=${BENCH_TTS_KB:-40}
OUT=bench/out
mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# A short text for the rates; a long chapter (the sample book's plain text,
# repeated) for the memory.
head -c 6000 sample/robots-plain.txt | sed '$d' >"$tmp/short.txt"
: >"$tmp/long.txt"
while [ "$(wc -c <"$tmp/long.txt")" -lt $((KB * 1024)) ]; do
	cat sample/robots-plain.txt >>"$tmp/long.txt"
done

objs=""
for o in providers/tts providers/tts_espeak providers/tts_openai providers/tts_mp3 providers/http_client \
	core/mem core/utf8 core/err core/stop core/buf core/timeutil core/log core/uuid; do
	[ -f "$B/obj/$o.o" ] || { echo "bench/tts: $B/obj/$o.o is missing (make B=$B $B/bookd)" >&2; exit 1; }
	objs="$objs $B/obj/$o.o"
done
# shellcheck disable=SC2086
"$CC" -O2 -std=c11 -D_GNU_SOURCE -Isrc -o "$tmp/tts_bench" bench/tts_bench.c $objs \
	$(pkg-config --libs espeak-ng libcurl libutf8proc jansson libsodium) -lmp3lame -lpthread -lm

pin=""
command -v taskset >/dev/null 2>&1 && pin="taskset -c 0"
echo "speech rates on one core (audio seconds per CPU second, $(wc -c <"$tmp/short.txt") bytes of text):"
$pin "$tmp/tts_bench" speed "$tmp/short.txt" | tee "$tmp/speed.json"
echo "one long chapter ($(wc -c <"$tmp/long.txt") bytes) narrated to MP3:"
$pin "$tmp/tts_bench" rss "$tmp/long.txt" | tee "$tmp/rss.json"
printf '{"speed": %s, "chapter": %s}\n' "$(cat "$tmp/speed.json")" "$(cat "$tmp/rss.json")" >"$OUT/tts.json"
python3 - "$OUT/tts.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s, c = d["speed"], d["chapter"]
ok = s["espeak_lame_x"] >= 150 and c["peak_rss_mb"] < 60
print("espeak-ng + LAME %.0fx real time (target >= 150x), espeak-ng alone %.0fx, LAME alone %.0fx; "
      "peak RSS %.1f MB for %.0f s of audio (target < 60 MB)"
      % (s["espeak_lame_x"], s["espeak_x"], s["lame_x"], c["peak_rss_mb"], c["audio_s"]))
sys.exit(0 if ok else 1)
PY
