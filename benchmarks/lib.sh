# Shared helpers for the benchmark scripts; source it, then call bench_init.
#
#   . "$(dirname "$0")/lib.sh"; bench_init NAME
#
# bench_init sets $here (benchmarks/), $root (the repository), $gateway_bin (MIRRORGATE_BIN or
# .build/release/mirrorgate), $work (a fresh temp dir under TMPDIR or /tmp, removed on exit) and an EXIT trap that
# stops every process recorded in $pids, by PID. Start servers in the main shell (not inside
# $(...)) so the trap sees their PIDs.

bench_init() { # name-for-the-temp-dir
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  root=$(cd "$here/.." && pwd)
  gateway_bin=${MIRRORGATE_BIN:-$root/.build/release/mirrorgate}
  [ -x "$gateway_bin" ] || { echo "no gateway binary at $gateway_bin: build first (make release) or set MIRRORGATE_BIN" >&2; exit 1; }
  work=$(mktemp -d "${TMPDIR:-/tmp}/mirrorgate-$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
  trap 'exit 143' TERM INT # so that a stopped run still stops its servers
  # Binaries built before shutdown.grace existed refuse the key; they are still benchmarked.
  gateway_shutdown="shutdown: {grace: 0s}"
  printf 'storage: {path: %s}\n%s\nregistries: {docker.io: {upstreams: [{name: u, url: "http://127.0.0.1:1"}]}}\n' \
    "$work/probe" "$gateway_shutdown" > "$work/probe.yaml"
  "$gateway_bin" check --config "$work/probe.yaml" > /dev/null 2>&1 || gateway_shutdown=""
}

bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] && { echo "work dir kept: $work" >&2; return; }
  rm -rf "$work"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { # url [tries of 0.1 s]
  local _; for _ in $(seq "${2:-150}"); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f\n", b - a }'; } # since $1 (from now)
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f\n", b / 1048576 }'; }

# Debian's docker-registry (CNCF distribution 2.8), optionally in proxy mode. Its access log
# (combined format, stdout) goes to $work/NAME.access, its own log to $work/NAME.log.
# Sets ${NAME}_pid. REGISTRY_LOG_LEVEL (default error) sets its log level.
start_registry() { # name port [proxy-remote-url]
  { echo "version: 0.1"; echo "log: {level: ${REGISTRY_LOG_LEVEL:-error}, formatter: text, accesslog: {disabled: false}}"
    echo "storage: {filesystem: {rootdirectory: $work/$1}}"; echo "http: {addr: 127.0.0.1:$2}"
    [ -n "${3:-}" ] && echo "proxy: {remoteurl: $3}"; true; } > "$work/$1.yml"
  docker-registry serve "$work/$1.yml" >> "$work/$1.access" 2>> "$work/$1.log" &
  pids+=($!); eval "${1}_pid=$!"
  wait_http "http://127.0.0.1:$2/v2/"
}

# A one-upstream MirrorGate config for docker.io on stdout; extra lines (e.g. "tags: {ttl: 0s}")
# are appended as given. No shutdown grace: no load balancer needs time to stop sending clients
# here, and every stop would otherwise wait its default 5 s.
gateway_yaml() { # port cache-dir upstream-url [extra-line...]
  local port=$1 cache=$2 url=$3; shift 3
  printf 'listen: 127.0.0.1:%s\nstorage: {path: %s}\n%s\n' "$port" "$cache" "$gateway_shutdown"
  local l; for l in "$@"; do printf '%s\n' "$l"; done
  printf 'registries:\n  docker.io:\n    upstreams:\n      - {name: upstream, url: "%s"}\n' "$url"
}
# Starts $gateway_bin with $work/NAME.yaml (written by the caller), log in $work/NAME.log.
# Sets ${NAME}_pid. GATEWAY_LOG_LEVEL (default error) sets its log level.
start_gateway() { # name port
  "$gateway_bin" serve --config "$work/$1.yaml" --log-level "${GATEWAY_LOG_LEVEL:-error}" >> "$work/$1.log" 2>&1 &
  pids+=($!); eval "${1}_pid=$!"
  wait_http "http://127.0.0.1:$2/v2/"
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Access-log accounting: lines are counted from an offset (a line count taken before the
# workload) so nothing is truncated under the writer.
log_lines() { if [ -f "$1" ]; then tr -d '\000' < "$1" | wc -l; else echo 0; fi; }
# Bytes sent in 2xx answers after line FROM (the size field of combined-format lines).
access_bytes() { # access-file [from-line]
  tr -d '\000' < "$1" | tail -n +"$(( ${2:-0} + 1 ))" | awk '{ if ($9 ~ /^2/) s += $10 } END { printf "%.0f\n", s + 0 }'
}
access_requests() { # access-file [from-line] [grep -E pattern on the request line]
  tr -d '\000' < "$1" | tail -n +"$(( ${2:-0} + 1 ))" | grep -cE "${3:-.}" || true
}

# Memory and CPU of a process (and its children, for nginx's workers): VmHWM is the peak RSS
# since start or since reset_peak_rss (writing 5 to clear_refs, Linux >= 4.0).
proc_tree() { echo "$1"; pgrep -P "$1" || true; }
peak_rss_kib() { local p s=0 v; for p in $(proc_tree "$1"); do v=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0); s=$((s + ${v:-0})); done; echo "$s"; }
peak_rss_mib() { awk -v k="$(peak_rss_kib "$1")" 'BEGIN { printf "%.0f", k / 1024 }'; }
reset_peak_rss() { local p; for p in $(proc_tree "$1"); do echo 5 > "/proc/$p/clear_refs" 2>/dev/null || true; done; }
cpu_ticks() { # utime + stime of the process and its children, in clock ticks
  local p s=0 v; for p in $(proc_tree "$1"); do v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0); s=$((s + ${v:-0})); done; echo "$s"
}
ticks_to_s() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f\n", t / hz }'; }

# Waits for every background job that is not a server in $pids; fails if any failed.
wait_clients() {
  local failed=0 job
  for job in $(jobs -p); do case " ${pids[*]} " in *" $job "*) ;; *) wait "$job" || failed=1;; esac; done
  [ $failed -eq 0 ] || { echo "a client failed" >&2; return 1; }
}

# A throwaway PostgreSQL 15 (Debian's postgresql-15) on 127.0.0.1:PORT, as the integration tests
# start it: initdb in $work/NAME (through setpriv as the postgres user when root, since initdb
# refuses root), superuser `mirrorgate` with the password in $work/NAME/pwfile, SCRAM on TCP.
# Extra arguments go to postgres (`-c key=value`); its log (stderr) goes to $work/NAME.log.
# Sets ${NAME}_pid; stop_postgres stops it by PID.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
start_postgres() { # name port [postgres-argument...]
  local name=$1 port=$2 dir=$work/$1 _; shift 2
  local -a as=()
  [ -x "$PG_BIN/postgres" ] || { echo "no PostgreSQL 15 in $PG_BIN: apt-get install postgresql-15 (or set PG_BIN)" >&2; return 1; }
  mkdir -p "$dir"
  printf 'bench-%s\n' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" > "$dir/pwfile"
  if [ "$(id -u)" -eq 0 ]; then
    as=(setpriv --reuid=postgres --regid=postgres --init-groups --); chmod a+x "$work"; chown -R postgres:postgres "$dir"
  fi
  "${as[@]}" "$PG_BIN/initdb" -D "$dir/data" -U mirrorgate --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$dir/pwfile" -E UTF8 --no-sync --no-instructions > "$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  "${as[@]}" "$PG_BIN/postgres" -D "$dir/data" -c listen_addresses=127.0.0.1 -p "$port" -k "$dir" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "$@" 2>> "$work/$name.log" &
  pids+=($!); eval "${name}_pid=$!"
  for _ in $(seq 300); do "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" && return 0; sleep 0.1; done
  echo "postgres did not accept connections: $(tail -5 "$work/$name.log")" >&2; return 1
}
# Fast shutdown (SIGINT: sessions are cut at once), by PID.
stop_postgres() { kill -INT "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
pg_sql() { # name port database sql → psql's unaligned, tuples-only output
  PGPASSWORD=$(cat "$work/$1/pwfile") PGCONNECT_TIMEOUT=10 "$PG_BIN/psql" -h 127.0.0.1 -p "$2" -U mirrorgate -d "$3" \
    -v ON_ERROR_STOP=1 -X -q -A -t -c "$4"
}
