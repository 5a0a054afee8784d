#!/bin/sh
# `make run`: import the sample book into an empty data dir, then serve it,
# printing requests to try (addresses from the effective configuration:
# environment and .env alike).
set -eu
BIN=build/bookd
DATA=${BOOKD_DATA_DIR:-./bookd-data}
export BOOKD_DATA_DIR="$DATA"
$BIN import --if-empty sample/physical-ai >/dev/null
BOOK=$($BIN import sample/physical-ai | sed -n 's/.*"book_id":"\([^"]*\)".*/\1/p')

CONFIG=$($BIN config)
setting() { printf '%s\n' "$CONFIG" | sed -n "s/^$1=//p"; }
HOST=$(setting BOOKD_HOST)
PORT=$(setting BOOKD_PORT)
ANON=$(setting BOOKD_CHAT_ANONYMOUS)
KEY=$(setting BOOKD_API_KEY)
SITE=$(setting BOOKD_SITE_DIR)
SITE_BASE=$(setting BOOKD_SITE_BASE_URL)
# A wildcard address is reached on loopback; an IPv6 literal needs brackets.
case $HOST in
0.0.0.0 | '') HOST=127.0.0.1 ;;
:: | '[::]') HOST='[::1]' ;;
\[*) ;;
*:*) HOST="[$HOST]" ;;
esac
URL="http://$HOST:$PORT"
AUTH=""
case $ANON in
true) WHO="anonymous chat is on, limited per IP" ;;
*)
	if [ -n "$KEY" ]; then
		WHO="anonymous chat is off (BOOKD_CHAT_ANONYMOUS=false): these send BOOKD_API_KEY"
		AUTH=" -H \"X-API-Key: \$BOOKD_API_KEY\""
	else
		WHO="anonymous chat is off: set BOOKD_CHAT_ANONYMOUS=true, or sign up at /api/v1/auth/register and send the token as Authorization: Bearer"
	fi
	;;
esac

cat <<EOT

  bookd is serving the sample book on $URL — try:

    curl $URL/health/ready
    curl $URL/api/v1/books
    curl $URL/api/v1/books/$BOOK/chapters
    curl $URL/api/v1/books/$BOOK/chapters/1
    curl $URL/api/v1/books/isbn/978-0-306-40615-7
    curl '$URL/api/v1/search?q=zero+moment+point'

  Ask the book ($WHO):
    curl -X POST $URL/api/v1/chatbot/query -H 'Content-Type: application/json'$AUTH \\
         -d '{"question":"What is the zero moment point?"}'
    curl -X POST $URL/api/chat -H 'Content-Type: application/json'$AUTH \\
         -d '{"message":"What is the zero moment point?"}'
EOT
if [ -n "$SITE" ]; then
	echo
	echo "  The site in $SITE: $URL$SITE_BASE"
fi
cat <<EOT

  Data: $DATA (SQLite).  Stop with Ctrl-C.

EOT
exec $BIN serve
