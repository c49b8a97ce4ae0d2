# shellcheck shell=bash
# Shared helpers for deploy/local/*.sh. Source it; it does not run anything by itself.
#
# Layout (LIVELENS_HOME defaults to <repo>/.livelens, which is gitignored):
#   $LIVELENS_HOME/kafka/<version>/libs   Kafka jars (from Maven Central via deploy/local/kafka/pom.xml)
#   $LIVELENS_HOME/kafka/*.properties     generated broker / log4j2 configs
#   $LIVELENS_HOME/data/{kafka,redis}     data dirs (wiped by LIVELENS_STACK_FRESH=1)
#   $LIVELENS_HOME/logs                   kafka.log, kafka.stdout.log, redis.log
#   $LIVELENS_HOME/run                    pid files, lock

LL_LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
LL_REPO_ROOT="$(cd "$LL_LOCAL_DIR/../.." && pwd -P)"
LL_HOME="${LIVELENS_HOME:-$LL_REPO_ROOT/.livelens}"
case "$LL_HOME" in /*) ;; *) LL_HOME="$PWD/$LL_HOME" ;; esac
# shellcheck disable=SC2034 # used by the scripts that source this file
LL_RUN="$LL_HOME/run"
LL_LOGS="$LL_HOME/logs"
# shellcheck disable=SC2034
LL_DATA="$LL_HOME/data"

ll_log() { printf '[livelens-stack] %s\n' "$*" >&2; }
ll_err() { printf '[livelens-stack] ERROR: %s\n' "$*" >&2; }
ll_die() { ll_err "$*"; exit 1; }

# Seconds since the epoch with microseconds (bash 5 EPOCHREALTIME).
ll_now() { printf '%s' "${EPOCHREALTIME:-$(date +%s.%N)}"; }
# ll_elapsed START -> "12.3"
ll_elapsed() { awk -v s="$1" -v e="$(ll_now)" 'BEGIN { printf "%.1f", e - s }'; }

# ll_tail_log FILE [LINES]: print the end of a log to stderr (for error reports).
ll_tail_log() {
  local f="$1" n="${2:-40}"
  if [[ -s "$f" ]]; then
    printf -- '----- last %s lines of %s -----\n' "$n" "$f" >&2
    tail -n "$n" "$f" >&2 || true
    printf -- '----- end of %s -----\n' "$f" >&2
  else
    printf -- '(%s is empty or missing)\n' "$f" >&2
  fi
}

# ll_port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
ll_port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ll_proc_running PID: alive and not a zombie (a broker that died while this script,
# its parent, is still waiting for it stays a zombie until the script exits).
ll_proc_running() {
  local pid="$1" state
  kill -0 "$pid" 2>/dev/null || return 1
  state="$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null || true)"
  [[ -n "$state" && "$state" != "Z" && "$state" != "X" ]]
}

# ll_pid_alive PIDFILE PATTERN: prints the pid and succeeds when the pid file names a
# live process whose command line contains PATTERN (guards against pid reuse).
ll_pid_alive() {
  local pidfile="$1" pattern="$2" pid cmdline
  [[ -s "$pidfile" ]] || return 1
  pid="$(tr -dc '0-9' <"$pidfile")"
  [[ -n "$pid" ]] || return 1
  ll_proc_running "$pid" || return 1
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
  [[ "$cmdline" == *"$pattern"* ]] || return 1
  printf '%s' "$pid"
}

# ll_stop_pidfile NAME PIDFILE PATTERN TIMEOUT_S: SIGTERM the process named by the pid
# file (only if it is still ours), wait up to TIMEOUT_S, then SIGKILL. Removes the pid file.
ll_stop_pidfile() {
  local name="$1" pidfile="$2" pattern="$3" timeout_s="$4" pid start
  if ! pid="$(ll_pid_alive "$pidfile" "$pattern")"; then
    if [[ -e "$pidfile" ]]; then
      ll_log "$name: not running (removing stale pid file)"
      rm -f "$pidfile"
    else
      ll_log "$name: not running"
    fi
    return 0
  fi
  start="$(ll_now)"
  ll_log "$name: stopping pid $pid (SIGTERM, up to ${timeout_s}s)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout_s))
  while ll_proc_running "$pid" && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if ll_proc_running "$pid"; then
    ll_log "$name: still alive after ${timeout_s}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while ll_proc_running "$pid"; do sleep 0.1; done
  fi
  rm -f "$pidfile"
  ll_log "$name: stopped in $(ll_elapsed "$start")s"
}

# ll_as_root CMD...: run as root (directly, or through sudo when available).
ll_as_root() {
  if [[ "$(id -u)" -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    ll_die "need root to run: $* (no sudo available)"
  fi
}

# ll_pkg_installed PKG: dpkg says the package is fully installed.
ll_pkg_installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

# ll_ensure_apt_packages PKG...: install the missing ones; apt-get update only if needed.
ll_ensure_apt_packages() {
  local missing=() p
  for p in "$@"; do
    ll_pkg_installed "$p" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  command -v apt-get >/dev/null 2>&1 ||
    ll_die "missing system packages (${missing[*]}) and apt-get is not available; install them by hand"
  local start
  start="$(ll_now)"
  ll_log "installing system packages: ${missing[*]}"
  local aptlog="$LL_LOGS/apt.log"
  mkdir -p "$LL_LOGS"
  if ! ll_as_root env DEBIAN_FRONTEND=noninteractive apt-get update >"$aptlog" 2>&1; then
    ll_tail_log "$aptlog"
    ll_die "apt-get update failed"
  fi
  if ! ll_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "${missing[@]}" >>"$aptlog" 2>&1; then
    ll_tail_log "$aptlog"
    ll_die "apt-get install ${missing[*]} failed"
  fi
  ll_log "system packages installed in $(ll_elapsed "$start")s (log: $aptlog)"
}

# ll_sha256 FILE
ll_sha256() { sha256sum "$1" | awk '{print $1}'; }
