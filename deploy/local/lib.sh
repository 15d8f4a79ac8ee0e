# Helpers shared by stack.sh, cluster-clickhouse.sh and cluster-kafka.sh (sourced, not run). The
# caller sets LOG_TAG (the prefix of its messages) and READY_TIMEOUT (seconds) first.

log() { printf '[%s] %s\n' "$LOG_TAG" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$LOG_TAG" "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
sha256_hex() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
random_secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# pid_matching PIDFILE PATTERN: the pid in PIDFILE while its process's command line (NULs as spaces)
# matches PATTERN, a grep regex. A pidfile counts only while its process still runs the command we
# started (pid reuse guard).
pid_matching() {
  local pidfile=$1 pattern=$2 pid
  [[ -f "$pidfile" ]] || return 1
  pid=$(cat "$pidfile")
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$pattern" || return 1
  echo "$pid"
}

# launched_from PIDFILE: during start-up, the launched process is still alive. NOTE: not
# pid_matching, whose command-line check races the launch: between the fork and the exec the child's
# command line is still the script's, and under load a check can land in that window (a spurious
# 'exited during start-up').
launched_from() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

# await_ready NAME PIDFILE LOGS READY_CMD [ARGS...]: every 0.5 s until READY_CMD succeeds; dies naming
# LOGS when the launched process is gone or READY_TIMEOUT seconds have passed.
await_ready() {
  local name=$1 pidfile=$2 logs=$3 deadline=$((SECONDS + READY_TIMEOUT))
  shift 3
  until "$@"; do
    launched_from "$pidfile" || die "$name exited during start-up; see $logs"
    ((SECONDS < deadline)) || die "$name not ready after ${READY_TIMEOUT}s; see $logs"
    sleep 0.5
  done
}

# terminate NAME:PID...: TERM to every one first, then up to 30 s each to exit before a KILL. (All
# first: stopped one by one, the last of a KRaft quorum would wait for the others.)
terminate() {
  local entry name pid
  for entry in "$@"; do
    name=${entry%%:*} pid=${entry#*:}
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
  done
  for entry in "$@"; do
    name=${entry%%:*} pid=${entry#*:}
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in 30s: killing"; kill -KILL "$pid" 2>/dev/null || true; fi
  done
}
