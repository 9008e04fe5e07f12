# shellcheck shell=bash
# bench/lib.sh: shell functions shared by the whole-node harnesses that measure
# pharos against a peer (bench/engine/http_vs_nginx, bench/api/api_vs_nginx).
#
# Source it from a bash script running under `set -euo pipefail` after setting
# BENCH_NAME (the prefix of error messages). Contract of the pieces:
#   - CPU time is read from /proc/PID/stat (utime+stime, clock ticks); a missing
#     pid is fatal (the server died mid-run).
#   - nginx is started from a config written by nginx_conf (perf-anchors.md
#     §6.2: keep-alive, access log off, one or more workers, optional CPU
#     affinity) and stopped by its master pid; nginx_start fills NGINX_MASTER
#     and NGINX_WORKERS (the master's children, the processes that serve).
#   - wrk output is reduced by wrk_parse to "rps requests p50_us p99_us non2xx
#     socket_errors" ("-" for percentiles when --latency was not given).
# Nothing here kills a process it was not handed by pid.

BENCH_NAME=${BENCH_NAME:-bench}
TCK=$(getconf CLK_TCK)
NGINX_MASTER="" NGINX_WORKERS=()

die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# statf PID: F[] = /proc/PID/stat fields after "comm": [0]=state(3) [1]=ppid(4) [11]=utime(14) [12]=stime(15)
statf() { local s; s=$(<"/proc/$1/stat") || return 1; s=${s##*) }; read -ra F <<<"$s"; }
# cpu_ticks PID...: utime+stime summed over the pids (all threads of each)
cpu_ticks() {
  local p t=0
  for p in "$@"; do statf "$p" 2>/dev/null || die "server pid $p is gone"; t=$((t + F[11] + F[12])); done
  echo "$t"
}
# cpu_us_per_req TICKS REQUESTS: microseconds of CPU per request
cpu_us_per_req() { awk -v d="$1" -v t="$TCK" -v n="$2" 'BEGIN { printf "%.3f", (n > 0 ? d / t / n * 1e6 : 0) }'; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_port: a loopback TCP port nobody listens on now (pharos and nginx both
# bind with SO_REUSEPORT, so a clash would silently share the port)
free_port() {
  local p
  for _ in $(seq 20); do
    p=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    port_open "$p" || { echo "$p"; return 0; }
  done
  die "no free loopback port found"
}
# http_ok PORT [PATH]: the status line of GET PATH (default /) says 200
http_ok() {
  local st
  st=$(timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 || exit 1
    printf "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$2" >&3; head -c 12 <&3' \
    _ "$1" "${2:-/}" 2>/dev/null) || true
  [[ $st == "HTTP/1."?" 200" ]]
}
# wait_ready PORT PID NAME LOG [PATH]: up to 10 s for a 200, dies if PID exits
wait_ready() {
  for _ in $(seq 100); do
    alive "$2" || { tail -n 20 "$4" >&2 2>/dev/null; die "$3 exited during startup"; }
    http_ok "$1" "${5:-/}" && return 0; sleep 0.1
  done
  die "$3 did not answer 200 on 127.0.0.1:$1 within 10 s"
}
# stop_pid PID [SIGNAL]: signal (default TERM), wait up to 5 s, then KILL
stop_pid() {
  alive "${1:-}" || return 0
  kill "-${2:-TERM}" "$1" 2>/dev/null
  for _ in $(seq 50); do alive "$1" || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}
aff() { local a; a=$(taskset -pc "$1"); echo "cpus ${a##*: }"; }

# nginx_conf PORT WORKERS AFFINITY [HTTP_EXTRA] [SERVER_BODY]: prints a config
# (relative paths resolve against nginx's -p prefix). AFFINITY is a
# worker_cpu_affinity value ("10" = CPU1) or "" for none. SERVER_BODY defaults
# to the fixed '{"ok":true}' of perf-anchors §6.2.
nginx_conf() {
  local port=$1 workers=$2 affinity=$3 extra=${4:-}
  local body=${5:-"location / { default_type application/json; return 200 '{\"ok\":true}'; }"}
  cat <<EOF
daemon on; master_process on; $( ((EUID == 0)) && echo "user root;")
worker_processes $workers;
$([[ -n $affinity ]] && echo "worker_cpu_affinity $affinity;")
pid nginx.pid; error_log logs/error.log warn;
events { worker_connections 4096; use epoll; }
http {
    access_log off; keepalive_timeout 65;
    keepalive_requests 1000000;
    client_body_temp_path temp/body; proxy_temp_path temp/proxy; fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi; scgi_temp_path temp/scgi;
$extra
    server {
        listen 127.0.0.1:$port reuseport backlog=4096; server_name localhost;
        $body
    }
}
EOF
}

# nginx_start DIR WORKERS: DIR holds nginx.conf; sets NGINX_MASTER and NGINX_WORKERS
nginx_start() {
  local dir=$1 want=$2 f
  mkdir -p "$dir/logs" "$dir/temp"
  /usr/sbin/nginx -c "$dir/nginx.conf" -p "$dir/" || die "nginx failed to start"
  for _ in $(seq 50); do [[ -s $dir/nginx.pid ]] && break; sleep 0.1; done
  NGINX_MASTER=$(<"$dir/nginx.pid") || die "nginx wrote no pid file"
  for _ in $(seq 50); do  # the workers are the master's children
    NGINX_WORKERS=()
    for f in /proc/[0-9]*; do
      statf "${f#/proc/}" 2>/dev/null && [[ ${F[1]} == "$NGINX_MASTER" ]] && NGINX_WORKERS+=("${f#/proc/}")
    done
    ((${#NGINX_WORKERS[@]} >= want)) && return 0; sleep 0.1
  done
  die "found ${#NGINX_WORKERS[@]} of $want nginx workers under master $NGINX_MASTER"
}
nginx_stop() {
  alive "$NGINX_MASTER" || return 0
  kill -QUIT "$NGINX_MASTER"
  for _ in $(seq 50); do alive "$NGINX_MASTER" || break; sleep 0.1; done
  if alive "$NGINX_MASTER"; then kill -KILL "$NGINX_MASTER" "${NGINX_WORKERS[@]}" 2>/dev/null || true; fi
  NGINX_MASTER=""
}

# nginx_quote TEXT: TEXT as a single-quoted nginx string ('\' and ''' escaped;
# '$' becomes ${bench_dollar}, which nginx_dollar_map defines)
nginx_quote() {
  local s=$1
  s=${s//\\/\\\\}; s=${s//\'/\\\'}; s=${s//\$/\$\{bench_dollar\}}
  printf "'%s'" "$s"
}
nginx_dollar_map() { echo '    geo $bench_dollar { default "$"; }'; }

# wrk_parse FILE: "rps requests p50_us p99_us non2xx socket_errors"
wrk_parse() {
  awk 'function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1e3
         if (v ~ /m$/) return v * 6e7; if (v ~ /s$/) return v * 1e6; return v }
    $1 == "50%" { p50 = us($2) }  $1 == "99%" { p99 = us($2) }
    / requests in / { n = $1 }  /^Requests\/sec:/ { rps = $2 }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    /Socket errors:/ { gsub(/,/, ""); se = $4 + $6 + $8 + $10 }
    END { printf "%s %d %s %s %d %d\n", rps == "" ? 0 : rps, n, p50 == "" ? "-" : sprintf("%.0f", p50),
           p99 == "" ? "-" : sprintf("%.0f", p99), bad, se }' "$1"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
# spread V...: "min..max"
spread() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s..%s", lo, hi }'; }
