# Workload 9 of benchmarks/run (sourced by it, in its shell: it uses the upstream, the image,
# record, wrk_run, cold_run and verify_clients defined there): three MirrorGate replicas on one
# PostgreSQL database and one shared storage directory, against one MirrorGate on SQLite and its
# own directory, in the same run.
#
# - cold: REPLICA_CLIENTS concurrent skopeo pulls spread round-robin over the replicas (a fresh
#   database and directory every iteration), vs the same number through one fresh SQLite gateway;
# - statements: what one replica sends to PostgreSQL for a cold manifest by tag, a cold blob, and
#   the same two warm on the other replica, counted in the server's log (log_statement = all,
#   switched on only for these requests), each in a window of PG_WINDOW seconds; the same window
#   with no request, before and after, shows the replicas' own periodic work (budget and usage
#   polls, batched access times), whose kinds of statement are also counted apart;
# - warm: wrk on the blob (8 and 64 connections) and on the manifest by tag from the replica
#   that did not fetch them (bytes from the shared directory, tags from PostgreSQL), vs the
#   single gateway.

PG_WINDOW=${PG_WINDOW:-3}
# 64 connections each reading the 64 MiB blob on a loaded 2-core machine may not finish one
# request in 5 s (wrk then has no requests to report), so the blob runs here last longer.
BLOB9_DURATION=$([ "$SMOKE" -eq 1 ] && echo "$WRK_DURATION" || echo "${BLOB9_DURATION:-15s}")
pgp=$(free_port)
start_postgres pg "$pgp" -c "log_line_prefix=@%a@ " -c log_destination=stderr
printf 'bench-peer-%s\n' "$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')" > "$work/peer-token"

start_replicas() { # database storage-dir count → rport[1..count], rpid[1..count]
  local db=$1 dir=$2 n=$3 k p pp v
  pg_sql pg "$pgp" postgres "CREATE DATABASE $db"
  rport=(); rpid=()
  for k in $(seq "$n"); do
    p=$(free_port); pp=$(free_port)
    gateway_yaml "$p" "$dir" "$UPSTREAM" \
      "metadata: {backend: postgres, postgres: {url: \"postgres://mirrorgate@127.0.0.1:$pgp/$db?sslmode=disable\", password_file: $work/pg/pwfile, pool_size: 4}}" \
      "cluster: {peer_listen: \"127.0.0.1:$pp\", advertise_url: \"http://127.0.0.1:$pp\", peer_token_file: $work/peer-token}" \
      > "$work/${db}r$k.yaml"
    start_gateway "${db}r$k" "$p"
    v="${db}r${k}_pid"; rport[$k]=$p; rpid[$k]=${!v}
  done
}
stop_replicas() { local k; for k in "${!rpid[@]}"; do stop_pid "${rpid[$k]}"; done; }

replicas_cold_run() { # iteration clients
  local it=$1 n=$2 t0 wall from i k r peak=0 bytes
  rm -rf "$work/r9shared"
  start_replicas "cold$it" "$work/r9shared" 3
  from=$(log_lines "$work/upstream.access")
  t0=$(now)
  for i in $(seq "$n"); do
    skopeo copy -q --insecure-policy --src-tls-verify=false \
      "docker://127.0.0.1:${rport[$(( (i - 1) % 3 + 1 ))]}/library/bench:v1" "dir:$work/out$i" &
  done
  wait_clients
  wall=$(elapsed "$t0")
  sleep 0.3 # the upstream writes an access-log line just after the answer's last byte
  bytes=$(access_bytes "$work/upstream.access" "$from")
  record 9 mirrorgate-replicas "c$n" "$it" wall_s "$wall"
  record 9 mirrorgate-replicas "c$n" "$it" upstream_requests "$(access_requests "$work/upstream.access" "$from")"
  record 9 mirrorgate-replicas "c$n" "$it" upstream_mib "$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')"
  record 9 mirrorgate-replicas "c$n" "$it" upstream_copies "$(awk -v b="$bytes" -v i="$image_bytes" 'BEGIN { printf "%.3f", b / i }')"
  for k in 1 2 3; do
    r=$(peak_rss_mib "${rpid[$k]}"); [ "$r" -gt "$peak" ] && peak=$r
    record 9 mirrorgate-replicas "c$n" "$it" "peak_rss_mib_replica$k" "$r"
  done
  record 9 mirrorgate-replicas "c$n" "$it" peak_rss_mib "$peak"
  stop_replicas
  verify_clients "$n"
}

for it in $(seq "$ITER"); do
  for s in $(order mirrorgate mirrorgate-replicas "$it"); do
    log "workload 9 ($REPLICA_CLIENTS concurrent cold pulls), iteration $it: $s"
    if [ "$s" = mirrorgate ]; then cold_run 9 mirrorgate "$it" "$REPLICA_CLIENTS"; else replicas_cold_run "$it" "$REPLICA_CLIENTS"; fi
  done
done

# statements NAME command... → $work/statements-NAME.log: PostgreSQL's log from the command's
# start until PG_WINDOW s after it (the pull ledger is written in batches every second, so a
# manifest's row lands inside the window)
statements() {
  local name=$1 a t0; shift
  a=$(log_lines "$work/pg.log"); t0=$(now)
  "$@"
  sleep "$(awk -v w="$PG_WINDOW" -v e="$(elapsed "$t0")" 'BEGIN { d = w - e; printf "%.3f", (d > 0 ? d : 0) }')"
  tr -d '\000' < "$work/pg.log" | tail -n +"$((a + 1))" > "$work/statements-$name.log"
}
# count_statements WINDOW-LOG [IDLE-LOG...] → the statements in the window that sessions other
# than psql sent; given idle windows, without those whose text (its first 80 characters) an idle
# window also has, nor postgres-nio's keep-alive of an idle pooled connection ("SELECT 1;",
# every 15 s, PostgresDatabase's keepAliveBehavior), which lands in a window by chance
count_statements() {
  python3 -c '
import re, sys
def kinds(path):
    out = []
    for line in open(path, errors="replace"):
        m = re.match(r"^@([^@]*)@ LOG:  (?:statement|execute [^:]*): (.*)$", line.rstrip("\n"))
        if m and m.group(1) != "psql":
            out.append(m.group(2)[:80])
    return out
background = {k for p in sys.argv[2:] for k in kinds(p)} | ({"SELECT 1;"} if sys.argv[2:] else set())
print(sum(k not in background for k in kinds(sys.argv[1])))
' "$@"
}
fetch_blob() { # port digest → the blob, checked against its digest
  local got; got=$(curl -sf "http://127.0.0.1:$1/v2/library/bench/blobs/$2" | sha256sum | cut -c1-64)
  [ "sha256:$got" = "$2" ] || { echo "replica on $1 answered the blob wrongly ($got)" >&2; return 1; }
}
fetch_manifest() { curl -sf -o /dev/null -H "Accept: $ACCEPT" "http://127.0.0.1:$1/v2/library/bench/manifests/v1"; }

log "workload 9: statements per cold and warm request"
rm -rf "$work/r9warm"
start_replicas warm "$work/r9warm" 3
sleep 2 # past the replicas' start-up work (migration check, first lease and janitor rounds)
pg_sql pg "$pgp" postgres "ALTER SYSTEM SET log_statement = 'all'" > /dev/null
pg_sql pg "$pgp" postgres "SELECT pg_reload_conf()" > /dev/null
sleep 0.5
statements idle_before sleep 0
statements cold_manifest fetch_manifest "${rport[1]}"
statements cold_blob fetch_blob "${rport[1]}" "$last_layer"
statements warm_manifest fetch_manifest "${rport[2]}"
statements warm_blob fetch_blob "${rport[2]}" "$last_layer"
statements idle_after sleep 0
pg_sql pg "$pgp" postgres "ALTER SYSTEM RESET log_statement" > /dev/null
pg_sql pg "$pgp" postgres "SELECT pg_reload_conf()" > /dev/null
for name in idle_before idle_after; do record 9 mirrorgate-replicas statements 1 "$name" "$(count_statements "$work/statements-$name.log")"; done
for name in cold_manifest cold_blob warm_manifest warm_blob; do
  record 9 mirrorgate-replicas statements 1 "$name" "$(count_statements "$work/statements-$name.log")"
  record 9 mirrorgate-replicas statements 1 "${name}_own" \
    "$(count_statements "$work/statements-$name.log" "$work/statements-idle_before.log" "$work/statements-idle_after.log")"
done

log "workload 9: warming replica 1 and the single gateway"
sp=$(free_port); rm -rf "$work/r9single"
gateway_yaml "$sp" "$work/r9single" "$UPSTREAM" > "$work/single.yaml"; start_gateway single "$sp"
port[mirrorgate]=$sp; spid[mirrorgate]=$single_pid
# the replica that did not fetch anything serves: bytes from the shared directory, tags from the database
port[mirrorgate-replicas]=${rport[2]}; spid[mirrorgate-replicas]=${rpid[2]}
for p in "${rport[1]}" "$sp"; do
  skopeo copy -q --insecure-policy --src-tls-verify=false "docker://127.0.0.1:$p/library/bench:v1" "dir:$work/warm9"
  rm -rf "$work/warm9"
done
for s in mirrorgate mirrorgate-replicas; do
  fetch_blob "${port[$s]}" "$blob"; fetch_manifest "${port[$s]}"
  wrk -t1 -c2 -d1s --timeout 60s "http://127.0.0.1:${port[$s]}/v2/library/bench/blobs/$blob" > /dev/null
done
for it in $(seq "$ITER"); do
  for conns in 8 64; do
    for s in $(order mirrorgate mirrorgate-replicas "$it"); do
      log "workload 9 (warm blob), iteration $it, $conns connections: $s"
      WRK_DURATION=$BLOB9_DURATION wrk_run "$s" "c$conns" "$it" "http://127.0.0.1:${port[$s]}/v2/library/bench/blobs/$blob" "$conns"
    done
  done
  for s in $(order mirrorgate mirrorgate-replicas "$it"); do
    log "workload 9 (manifest by tag), iteration $it: $s"
    wrk_run "$s" manifest "$it" "http://127.0.0.1:${port[$s]}/v2/library/bench/manifests/v1" 16 "Accept: $ACCEPT"
  done
done
stop_pid "$single_pid"; stop_replicas; stop_postgres "$pg_pid"
