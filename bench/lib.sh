# bench/lib.sh: process and port helpers shared by the bench scripts.
# POSIX sh, sourced after `cd` to the project root; BENCH_NAME names the
# script in messages, and `seed` (set by the script, different in each) is
# where next_port starts looking.

await_exit() { # pid seconds what: until pid is gone; SIGKILL it (saying so) when time is up
	i=0
	while kill -0 "$1" 2>/dev/null && [ "$i" -lt $(($2 * 10)) ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$1" 2>/dev/null; then
		echo "$BENCH_NAME: $3 (pid $1) did not stop within $2 s: killing it" >&2
		kill -KILL "$1" 2>/dev/null || true
	fi
}

stop_pid() { # pid signal seconds: signal, wait, then SIGKILL
	p=$1
	[ -n "$p" ] || return 0
	kill -0 "$p" 2>/dev/null || {
		wait "$p" 2>/dev/null || true
		return 0
	}
	kill "-$2" "$p" 2>/dev/null || true
	await_exit "$p" "$3" "the process sent SIG$2"
	wait "$p" 2>/dev/null || true
}

wait_http() { # url pid seconds: until url answers 2xx, the pid dies, or time is up
	i=0
	while [ "$i" -lt $(($3 * 10)) ]; do
		kill -0 "$2" 2>/dev/null || return 1
		curl -fs -o /dev/null --max-time 1 "$1" && return 0
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

next_port() { # [parity 0|1]: sets PORT to a loopback port where nothing answers
	while :; do
		seed=$(((seed + 1) % 5000))
		PORT=$((20000 + seed * 2 + ${1:-0}))
		prc=0
		curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/" || prc=$?
		[ "$prc" -ne 7 ] || return 0
	done
}

# dir types server probe: starts nginx as bookd's reference (2 workers,
# sendfile, tcp_nopush $NOPUSH, keep-alive, no access log) on a free loopback
# port, with `types` and the body of its one `server` block as given (the
# listen line is added); waits until /probe answers. Sets NPORT and
# NGINX_PID; dies after 3 tries.
start_nginx() {
	_ndir=$1
	_ntypes=$2
	_nserver=$3
	_nprobe=$4
	_ntries=0
	while :; do
		next_port 1
		NPORT=$PORT
		cat >"$_ndir/nginx.conf" <<NGINXCONF
worker_processes 2;
daemon off;
pid $_ndir/nginx.pid;
error_log $_ndir/nginx-error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    sendfile on;
    tcp_nopush ${NOPUSH:-on};
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    $_ntypes
    client_body_temp_path $_ndir/nginx-temp/body;
    proxy_temp_path $_ndir/nginx-temp/proxy;
    fastcgi_temp_path $_ndir/nginx-temp/fastcgi;
    uwsgi_temp_path $_ndir/nginx-temp/uwsgi;
    scgi_temp_path $_ndir/nginx-temp/scgi;
    server {
        listen 127.0.0.1:$NPORT;
        $_nserver
    }
}
NGINXCONF
		nginx -e "$_ndir/nginx-error.log" -c "$_ndir/nginx.conf" -p "$_ndir" >"$_ndir/nginx.out" 2>&1 &
		NGINX_PID=$!
		wait_http "http://127.0.0.1:$NPORT/$_nprobe" "$NGINX_PID" 10 && return 0
		stop_pid "$NGINX_PID" TERM 5
		NGINX_PID=""
		_ntries=$((_ntries + 1))
		if [ "$_ntries" -ge 3 ]; then
			cat "$_ndir/nginx.out" "$_ndir/nginx-error.log" >&2 2>/dev/null || true
			die "nginx did not start on 127.0.0.1 (3 tries)"
		fi
	done
}
