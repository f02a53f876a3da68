# Helpers shared by scripts/bench-broker.sh and scripts/bench-client.sh (sourced, not run).
# Expects: ROOT, BROOK (the brook binary), TMP_BASE; uses PARTITIONS (default 1).

log() { printf '%s\n' "$*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# utime+stime of a process, in clock ticks
proc_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
proc_hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# value of key=... in a RESULT line
field() { tr ' ' '\n' <<<"$1" | awk -F= -v k="$2" '$1 == k {print $2}'; }

human_size() { awk -v s="$1" 'BEGIN {if (s >= 1024 && s % 1024 == 0) printf "%d KiB", s / 1024; else printf "%d B", s}'; }
fmt_int() { awk -v n="$1" 'BEGIN {if (n == "-" || n == "") {print "-"; exit} s = sprintf("%d", n); o = ""; while (length(s) > 3) {o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3)} print s o}'; }

BROKER_PID=""
BROKER_DIR=""
cleanup() {
  if [[ -n $BROKER_PID ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  fi
  BROKER_PID=""
  [[ -n $BROKER_DIR ]] && rm -rf "$BROKER_DIR"
  BROKER_DIR=""
}

start_broker() { # flush policy; sets BROKER_PID BROKER_DIR BROKER_PORT
  BROKER_DIR=$(mktemp -d "$TMP_BASE/brook-bench.XXXXXX")
  BROKER_PORT=$(free_port)
  "$BROOK" broker --listen "127.0.0.1:$BROKER_PORT" --data-dir "$BROKER_DIR/data" \
    --flush "$1" --default-partitions "${PARTITIONS:-1}" --log-level warning \
    >"$BROKER_DIR/broker.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 300); do
    if ! kill -0 "$BROKER_PID" 2>/dev/null; then
      log "broker exited during startup:"; tail -20 "$BROKER_DIR/broker.log" >&2; return 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "broker did not listen on 127.0.0.1:$BROKER_PORT within 30 s"; return 1
}
