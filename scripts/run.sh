#!/bin/sh
# `make run`: import the sample book into an empty data dir, then serve it.
set -eu
BIN=build/bookd
DATA=${BOOKD_DATA_DIR:-./bookd-data}
export BOOKD_DATA_DIR="$DATA"
$BIN import --if-empty sample/physical-ai >/dev/null
HOST=${BOOKD_HOST:-127.0.0.1}
PORT=${BOOKD_PORT:-8000}
BOOK=$($BIN import sample/physical-ai | sed -n 's/.*"book_id":"\([^"]*\)".*/\1/p')
cat <<EOT

  bookd is serving the sample book on http://$HOST:$PORT — try:

    curl http://$HOST:$PORT/health/ready
    curl http://$HOST:$PORT/api/v1/books
    curl http://$HOST:$PORT/api/v1/books/$BOOK/chapters
    curl http://$HOST:$PORT/api/v1/books/$BOOK/chapters/1
    curl http://$HOST:$PORT/api/v1/books/isbn/978-0-306-40615-7
    curl 'http://$HOST:$PORT/api/v1/search?q=zero+moment+point'

  The chatbot (BOOKD_API_KEY=… for writes and chat; or sign up via /api/v1/auth/register):
    curl -X POST http://$HOST:$PORT/api/v1/chatbot/query -H "X-API-Key: \$BOOKD_API_KEY" \\
         -H 'Content-Type: application/json' -d '{"question":"What is the zero moment point?"}'

  Data: $DATA (SQLite).  Stop with Ctrl-C.

EOT
exec $BIN serve
