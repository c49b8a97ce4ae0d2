#!/usr/bin/env bash
# LiveLens local infrastructure for dev and CI: a single-node Kafka (KRaft) and Redis.
#
#   deploy/local/stack.sh up        install what is missing, start Kafka + Redis, wait until ready
#   deploy/local/stack.sh down      stop both (by pid file only)
#   deploy/local/stack.sh status    say what runs (exit 0 when both run and answer, 3 otherwise)
#   deploy/local/stack.sh env       print KAFKA_BROKERS=... and REDIS_URL=...
#   deploy/local/stack.sh kafka-run-class MAIN_CLASS [ARGS...]
#                                   run a Kafka Java tool from the installed jars, e.g.
#                                   org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:19092 --list
#
# Environment:
#   LIVELENS_HOME                  cache/data/log/pid root (default: <repo>/.livelens)
#   LIVELENS_KAFKA_PORT            broker port (default 19092)
#   LIVELENS_KAFKA_CONTROLLER_PORT KRaft controller port (default 19093)
#   LIVELENS_REDIS_PORT            redis port (default 16379)
#   LIVELENS_STACK_FRESH=1         `up` wipes the Kafka and Redis data dirs first (same as `up --fresh`)
#   LIVELENS_KAFKA_READY_TIMEOUT   seconds to wait for the broker (default 90)
#   LIVELENS_KAFKA_HEAP_OPTS       broker heap (default "-Xms256m -Xmx1g")
#   LIVELENS_STACK_SKIP_APT=1      never call apt-get (fail if redis-server is missing)
#   JAVA_HOME                      java to use (default: java on PATH; 17+ required)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/lib.sh"

# System packages `up` makes sure of. Later work appends here, e.g.
#   nginx libnginx-mod-rtmp espeak-ng prometheus
LIVELENS_APT_PACKAGES="redis-server ffmpeg nginx libnginx-mod-rtmp espeak-ng fonts-dejavu-core fonts-wqy-microhei prometheus"

KAFKA_PORT="${LIVELENS_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${LIVELENS_KAFKA_CONTROLLER_PORT:-19093}"
REDIS_PORT="${LIVELENS_REDIS_PORT:-16379}"
KAFKA_READY_TIMEOUT="${LIVELENS_KAFKA_READY_TIMEOUT:-90}"
KAFKA_HEAP_OPTS="${LIVELENS_KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
KAFKA_NODE_ID=1
KAFKA_MAX_MESSAGE_BYTES=4194304 # 4 MiB: JPEG frames travel inside messages

KAFKA_POM="$LL_LOCAL_DIR/kafka/pom.xml"
KAFKA_VERSION="$(sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' "$KAFKA_POM" | head -n 1)"
[[ -n "$KAFKA_VERSION" ]] || ll_die "cannot read <kafka.version> from $KAFKA_POM"
KAFKA_LIBS="$LL_HOME/kafka/$KAFKA_VERSION/libs"
KAFKA_MARKER="$KAFKA_LIBS/.livelens-install-complete"
KAFKA_CONF_DIR="$LL_HOME/kafka"
KAFKA_SERVER_PROPS="$KAFKA_CONF_DIR/server.properties"
KAFKA_LOG4J="$KAFKA_CONF_DIR/log4j2.properties"
KAFKA_TOOLS_LOG4J="$KAFKA_CONF_DIR/tools-log4j2.properties"
KAFKA_DATA="$LL_DATA/kafka"
KAFKA_LOG_DIRS="$KAFKA_DATA/logs"
KAFKA_CLUSTER_ID_FILE="$KAFKA_DATA/cluster.id"
KAFKA_FORMAT_STAMP="$KAFKA_DATA/format.stamp"
KAFKA_PID="$LL_RUN/kafka.pid"
KAFKA_LOG="$LL_LOGS/kafka.log"
KAFKA_STDOUT="$LL_LOGS/kafka.stdout.log"
KAFKA_PATTERN="kafka.Kafka $KAFKA_SERVER_PROPS" # what the broker's command line contains

REDIS_DATA="$LL_DATA/redis"
REDIS_PID="$LL_RUN/redis.pid"
REDIS_LOG="$LL_LOGS/redis.log"
REDIS_PATTERN="redis-server"

# Main classes (Kafka 4.x)
KAFKA_MAIN="kafka.Kafka"
KAFKA_STORAGE_MAIN="kafka.tools.StorageTool"
KAFKA_APIVERSIONS_MAIN="org.apache.kafka.tools.BrokerApiVersionsCommand"

JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
KAFKA_JVM_OPTS=(-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
  -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true)
TOOLS_JVM_OPTS=(-Xms32m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

# ---------------------------------------------------------------- prerequisites

java_major() {
  local v
  v="$("$JAVA" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)"
  v="${v#1.}"
  printf '%s' "${v%%[.+-]*}"
}

# apt_install_no_service_start PKG...: ll_ensure_apt_packages with a policy-rc.d that forbids starting
# services while apt-get runs. nginx is installed only for the test RTMP server (test/support/src/media),
# which runs its own config on a free port; without this the Debian package would start a system nginx on
# port 80. A policy-rc.d already there (Docker images ship one) is left as it is; ours is removed afterwards.
LL_POLICY_RC_D=/usr/sbin/policy-rc.d
LL_POLICY_MARKER="# livelens stack.sh: temporary, no service starts during apt-get install"
remove_our_policy_rc_d() {
  if [[ -f "$LL_POLICY_RC_D" ]] && grep -qxF "$LL_POLICY_MARKER" "$LL_POLICY_RC_D"; then
    ll_as_root rm -f "$LL_POLICY_RC_D"
  fi
}
apt_install_no_service_start() {
  local p missing=0
  for p in "$@"; do ll_pkg_installed "$p" || missing=1; done
  if ((missing == 0)) || [[ -e "$LL_POLICY_RC_D" ]] || ! command -v apt-get >/dev/null 2>&1; then
    ll_ensure_apt_packages "$@"
    return
  fi
  trap remove_our_policy_rc_d EXIT # ll_die exits
  printf '#!/bin/sh\n%s\nexit 101\n' "$LL_POLICY_MARKER" | ll_as_root tee "$LL_POLICY_RC_D" >/dev/null
  ll_as_root chmod 0755 "$LL_POLICY_RC_D"
  ll_ensure_apt_packages "$@"
  remove_our_policy_rc_d
  trap - EXIT
}

ensure_system_packages() {
  local pkgs
  read -r -a pkgs <<<"$LIVELENS_APT_PACKAGES"
  # Java 17+ and Maven are expected on the machine; install them too when absent.
  command -v "$JAVA" >/dev/null 2>&1 || pkgs+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null 2>&1 || pkgs+=(maven)
  if [[ "${LIVELENS_STACK_SKIP_APT:-0}" == 1 ]]; then
    command -v redis-server >/dev/null 2>&1 || ll_die "redis-server not found (LIVELENS_STACK_SKIP_APT=1)"
  else
    apt_install_no_service_start "${pkgs[@]}"
  fi
  command -v "$JAVA" >/dev/null 2>&1 || ll_die "java not found (set JAVA_HOME or install a JDK 17+)"
  local major
  major="$(java_major)"
  if ! [[ "$major" =~ ^[0-9]+$ ]] || ((major < 17)); then
    ll_die "Kafka $KAFKA_VERSION needs Java 17+, $JAVA is version '${major:-unknown}'"
  fi
}

kafka_installed() {
  [[ -f "$KAFKA_MARKER" && "$(cat "$KAFKA_MARKER")" == "$(ll_sha256 "$KAFKA_POM")" ]]
}

# Copy the Kafka jars from Maven Central (via ~/.m2) into $KAFKA_LIBS, once per pom content.
install_kafka() {
  kafka_installed && return 0
  command -v mvn >/dev/null 2>&1 || ll_die "mvn not found (needed once, to fetch the Kafka jars)"
  local start tmp mvnlog
  start="$(ll_now)"
  tmp="$KAFKA_LIBS.tmp.$$"
  mvnlog="$LL_LOGS/kafka-install.log"
  mkdir -p "$LL_LOGS" "$(dirname "$KAFKA_LIBS")"
  rm -rf "$tmp"
  ll_log "installing Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
  if ! mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" -Dmdep.overWriteReleases=true >"$mvnlog" 2>&1; then
    rm -rf "$tmp"
    ll_tail_log "$mvnlog"
    ll_die "mvn dependency:copy-dependencies failed (log: $mvnlog)"
  fi
  [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" && -f "$tmp/kafka-tools-$KAFKA_VERSION.jar" ]] || {
    rm -rf "$tmp"
    ll_die "mvn finished but kafka_2.13-$KAFKA_VERSION.jar / kafka-tools-$KAFKA_VERSION.jar are missing"
  }
  ll_sha256 "$KAFKA_POM" >"$tmp/.livelens-install-complete"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  ll_log "Kafka jars installed in $(ll_elapsed "$start")s ($(du -sh "$KAFKA_LIBS" | cut -f1))"
}

# ---------------------------------------------------------------- kafka

write_kafka_configs() {
  mkdir -p "$KAFKA_CONF_DIR" "$KAFKA_LOG_DIRS" "$LL_LOGS"
  cat >"$KAFKA_SERVER_PROPS.tmp" <<EOF
# Generated by deploy/local/stack.sh on every start; edit the script, not this file.
# Single-node KRaft: one JVM is both broker and controller.
process.roles=broker,controller
node.id=$KAFKA_NODE_ID
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_LOG_DIRS

# Topics are created explicitly by the services / tests.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1

# Internal topics on one broker (consumer offsets, transactions, share groups).
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

# Frames are JPEG inside messages: allow up to 4 MiB per record batch.
message.max.bytes=$KAFKA_MAX_MESSAGE_BYTES
replica.fetch.max.bytes=$KAFKA_MAX_MESSAGE_BYTES

# Small machine, dev data: fewer threads, one day of retention, 128 MiB segments.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=134217728
log.retention.check.interval.ms=300000
EOF
  mv "$KAFKA_SERVER_PROPS.tmp" "$KAFKA_SERVER_PROPS"

  cat >"$KAFKA_LOG4J.tmp" <<EOF
# Generated by deploy/local/stack.sh: broker logs -> $KAFKA_LOG (rolled at start and at 50 MB;
# $KAFKA_LOG.1 is the previous one).
status = warn
name = livelens-kafka
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = $KAFKA_LOG
appender.file.filePattern = $KAFKA_LOG.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.startup.type = OnStartupTriggeringPolicy
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 50MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 5
appender.file.strategy.fileIndex = min
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
EOF
  mv "$KAFKA_LOG4J.tmp" "$KAFKA_LOG4J"

  cat >"$KAFKA_TOOLS_LOG4J.tmp" <<'EOF'
# Generated by deploy/local/stack.sh: Kafka command-line tools log warnings to stderr.
status = error
name = livelens-kafka-tools
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
  mv "$KAFKA_TOOLS_LOG4J.tmp" "$KAFKA_TOOLS_LOG4J"
}

# kafka_tool MAIN_CLASS ARGS...: run a Java main from the Kafka jars (short-lived JVM).
kafka_tool() {
  local main="$1"
  shift
  "$JAVA" "${TOOLS_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" \
    -cp "$KAFKA_LIBS/*" "$main" "$@"
}

# A KRaft cluster id: 16 random bytes, URL-safe base64 without padding (what
# `kafka-storage random-uuid` prints), not starting with '-'.
new_cluster_id() {
  local id
  while :; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    [[ "$id" != -* ]] && { printf '%s' "$id"; return; }
  done
}

# Format the KRaft storage once (the log dir keeps meta.properties afterwards).
format_kafka_storage() {
  local stamp_want="node.id=$KAFKA_NODE_ID controller=127.0.0.1:$KAFKA_CONTROLLER_PORT"
  if [[ -f "$KAFKA_LOG_DIRS/meta.properties" ]]; then
    if [[ -f "$KAFKA_FORMAT_STAMP" && "$(cat "$KAFKA_FORMAT_STAMP")" != "$stamp_want" ]]; then
      ll_die "Kafka storage in $KAFKA_DATA was formatted for '$(cat "$KAFKA_FORMAT_STAMP")'," \
        "now '$stamp_want' (controller port changed?). Re-run with LIVELENS_STACK_FRESH=1 to wipe it."
    fi
    return 0
  fi
  local cluster_id fmtlog="$LL_LOGS/kafka-format.log"
  if [[ -s "$KAFKA_CLUSTER_ID_FILE" ]]; then
    cluster_id="$(cat "$KAFKA_CLUSTER_ID_FILE")"
  else
    cluster_id="$(new_cluster_id)"
    mkdir -p "$KAFKA_DATA"
    printf '%s\n' "$cluster_id" >"$KAFKA_CLUSTER_ID_FILE"
  fi
  cluster_id="${cluster_id//[[:space:]]/}"
  rm -rf "$KAFKA_LOG_DIRS" # a half-formatted dir from an interrupted run
  mkdir -p "$KAFKA_LOG_DIRS"
  ll_log "formatting KRaft storage (cluster id $cluster_id, --standalone) in $KAFKA_LOG_DIRS"
  if ! kafka_tool "$KAFKA_STORAGE_MAIN" format --config "$KAFKA_SERVER_PROPS" \
    --cluster-id "$cluster_id" --standalone >"$fmtlog" 2>&1; then
    ll_tail_log "$fmtlog"
    ll_die "$KAFKA_STORAGE_MAIN format failed (log: $fmtlog)"
  fi
  printf '%s\n' "$stamp_want" >"$KAFKA_FORMAT_STAMP"
}

# Protocol-level check: an ApiVersions round trip through the admin client, and the
# broker listed in the metadata (registered, not fenced).
kafka_answers() {
  local out
  out="$(timeout 30 "$JAVA" "${TOOLS_JVM_OPTS[@]}" -Dlog4j2.configurationFile="$KAFKA_TOOLS_LOG4J" \
    -cp "$KAFKA_LIBS/*" "$KAFKA_APIVERSIONS_MAIN" --bootstrap-server "127.0.0.1:$KAFKA_PORT" 2>&1)" ||
    return 1
  [[ "$out" == *"(id: $KAFKA_NODE_ID"* && "$out" == *"ApiVersions("* ]]
}

# wait_kafka_ready PID START: poll until the broker answers; die with the log tail otherwise.
wait_kafka_ready() {
  local pid="$1" start="$2"
  local deadline=$((SECONDS + KAFKA_READY_TIMEOUT))
  while :; do
    if ! ll_proc_running "$pid"; then
      ll_tail_log "$KAFKA_STDOUT" 20
      ll_tail_log "$KAFKA_LOG" 60
      rm -f "$KAFKA_PID"
      ll_die "Kafka (pid $pid) exited during startup; see $KAFKA_LOG and $KAFKA_STDOUT"
    fi
    if ll_port_open "$KAFKA_PORT" && kafka_answers; then
      ll_log "Kafka $KAFKA_VERSION ready on 127.0.0.1:$KAFKA_PORT after $(ll_elapsed "$start")s (pid $pid)"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      ll_tail_log "$KAFKA_STDOUT" 20
      ll_tail_log "$KAFKA_LOG" 60
      ll_die "Kafka (pid $pid) not ready after ${KAFKA_READY_TIMEOUT}s; it is left running, see $KAFKA_LOG (stop it with: $0 down)"
    fi
    sleep 0.5
  done
}

start_kafka() {
  local pid start
  if pid="$(ll_pid_alive "$KAFKA_PID" "$KAFKA_PATTERN")"; then
    if ll_port_open "$KAFKA_PORT" && kafka_answers; then
      ll_log "Kafka already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
      return 0
    fi
    ll_log "Kafka process $pid is up but not answering yet; waiting"
    wait_kafka_ready "$pid" "$(ll_now)"
    return 0
  fi
  if [[ -e "$KAFKA_PID" ]]; then
    ll_log "Kafka: removing stale pid file (pid $(cat "$KAFKA_PID" 2>/dev/null || true) is gone)"
    rm -f "$KAFKA_PID"
  fi
  local p
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    ll_port_open "$p" && ll_die "port 127.0.0.1:$p is already in use by another process" \
      "(not the Kafka of $LL_HOME); stop it or set LIVELENS_KAFKA_PORT / LIVELENS_KAFKA_CONTROLLER_PORT"
  done
  write_kafka_configs
  format_kafka_storage
  mkdir -p "$LL_RUN" "$LL_LOGS"
  [[ -f "$KAFKA_STDOUT" ]] && mv -f "$KAFKA_STDOUT" "$KAFKA_STDOUT.1"
  local heap
  read -r -a heap <<<"$KAFKA_HEAP_OPTS"
  start="$(ll_now)"
  # setsid: own session, so the broker outlives this shell and its terminal.
  # 9>&-: do not hand the stack lock to the broker.
  (
    cd "$LL_HOME"
    exec setsid nohup "$JAVA" "${heap[@]}" "${KAFKA_JVM_OPTS[@]}" \
      -Dlog4j2.configurationFile="$KAFKA_LOG4J" -Dkafka.logs.dir="$LL_LOGS" \
      -cp "$KAFKA_LIBS/*" "$KAFKA_MAIN" "$KAFKA_SERVER_PROPS" \
      >"$KAFKA_STDOUT" 2>&1 </dev/null 9>&-
  ) &
  pid=$!
  printf '%s\n' "$pid" >"$KAFKA_PID"
  ll_log "Kafka $KAFKA_VERSION starting (pid $pid, log $KAFKA_LOG)"
  wait_kafka_ready "$pid" "$start"
}

# ---------------------------------------------------------------- redis

redis_answers() {
  [[ "$(timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null || true)" == "PONG" ]]
}

start_redis() {
  local pid start
  if pid="$(ll_pid_alive "$REDIS_PID" "$REDIS_PATTERN")" && redis_answers; then
    ll_log "Redis already running (pid $pid) on 127.0.0.1:$REDIS_PORT"
    return 0
  fi
  if [[ -n "${pid:-}" ]]; then
    ll_die "Redis pid $pid (from $REDIS_PID) is alive but does not answer PING on port $REDIS_PORT" \
      "(port changed?); run '$0 down' first"
  fi
  if [[ -e "$REDIS_PID" ]]; then
    ll_log "Redis: removing stale pid file"
    rm -f "$REDIS_PID"
  fi
  ll_port_open "$REDIS_PORT" && ll_die "port 127.0.0.1:$REDIS_PORT is already in use by another process;" \
    "stop it or set LIVELENS_REDIS_PORT"
  mkdir -p "$REDIS_DATA" "$LL_RUN" "$LL_LOGS"
  start="$(ll_now)"
  if ! redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --save '' --appendonly no --daemonize yes \
    --pidfile "$REDIS_PID" --dir "$REDIS_DATA" --logfile "$REDIS_LOG" </dev/null 9>&-; then
    ll_tail_log "$REDIS_LOG"
    ll_die "redis-server failed to start"
  fi
  local deadline=$((SECONDS + 15))
  until redis_answers; do
    if ((SECONDS >= deadline)); then
      ll_tail_log "$REDIS_LOG"
      ll_die "Redis not answering PING on 127.0.0.1:$REDIS_PORT after 15s"
    fi
    sleep 0.1
  done
  pid="$(ll_pid_alive "$REDIS_PID" "$REDIS_PATTERN")" || {
    ll_tail_log "$REDIS_LOG"
    ll_die "Redis answers on 127.0.0.1:$REDIS_PORT but $REDIS_PID does not name a live redis-server"
  }
  ll_log "Redis ready on 127.0.0.1:$REDIS_PORT after $(ll_elapsed "$start")s (pid $pid)"
}

# ---------------------------------------------------------------- commands

take_lock() {
  mkdir -p "$LL_RUN"
  exec 9>"$LL_RUN/stack.lock"
  flock -w 300 9 || ll_die "another stack.sh holds $LL_RUN/stack.lock for over 300s"
}

stop_all() {
  ll_stop_pidfile "Kafka" "$KAFKA_PID" "$KAFKA_PATTERN" 30
  ll_stop_pidfile "Redis" "$REDIS_PID" "$REDIS_PATTERN" 15
}

cmd_up() {
  local fresh="${LIVELENS_STACK_FRESH:-0}" arg
  for arg in "$@"; do
    case "$arg" in
      --fresh) fresh=1 ;;
      *) ll_die "up: unknown option '$arg'" ;;
    esac
  done
  local start
  start="$(ll_now)"
  take_lock
  ensure_system_packages
  install_kafka
  if [[ "$fresh" == 1 ]]; then
    ll_log "fresh start: stopping services and wiping $KAFKA_DATA and $REDIS_DATA"
    stop_all
    rm -rf "$KAFKA_DATA" "$REDIS_DATA"
  fi
  start_redis
  start_kafka
  ll_log "stack up in $(ll_elapsed "$start")s: KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
}

cmd_down() {
  take_lock
  stop_all
}

cmd_status() {
  local rc=0 pid
  printf 'home:  %s\n' "$LL_HOME"
  if kafka_installed; then
    printf 'kafka: %s jars installed in %s\n' "$KAFKA_VERSION" "$KAFKA_LIBS"
  else
    printf 'kafka: %s jars not installed (run: %s up)\n' "$KAFKA_VERSION" "$0"
  fi
  if pid="$(ll_pid_alive "$KAFKA_PID" "$KAFKA_PATTERN")"; then
    if ll_port_open "$KAFKA_PORT" && kafka_answers; then
      printf 'kafka: running, pid %s, ready on 127.0.0.1:%s\n' "$pid" "$KAFKA_PORT"
    else
      printf 'kafka: running, pid %s, NOT answering on 127.0.0.1:%s\n' "$pid" "$KAFKA_PORT"
      rc=3
    fi
  else
    printf 'kafka: stopped%s\n' "$([[ -e "$KAFKA_PID" ]] && echo ' (stale pid file)')"
    rc=3
  fi
  if pid="$(ll_pid_alive "$REDIS_PID" "$REDIS_PATTERN")"; then
    if redis_answers; then
      printf 'redis: running, pid %s, ready on 127.0.0.1:%s\n' "$pid" "$REDIS_PORT"
    else
      printf 'redis: running, pid %s, NOT answering on 127.0.0.1:%s\n' "$pid" "$REDIS_PORT"
      rc=3
    fi
  else
    printf 'redis: stopped%s\n' "$([[ -e "$REDIS_PID" ]] && echo ' (stale pid file)')"
    rc=3
  fi
  return "$rc"
}

cmd_env() {
  printf 'KAFKA_BROKERS=127.0.0.1:%s\n' "$KAFKA_PORT"
  printf 'REDIS_URL=redis://127.0.0.1:%s\n' "$REDIS_PORT"
}

cmd_kafka_run_class() {
  (($# >= 1)) || ll_die "usage: $0 kafka-run-class MAIN_CLASS [ARGS...]"
  if ! kafka_installed; then
    take_lock
    install_kafka
    exec 9>&-
  fi
  [[ -f "$KAFKA_TOOLS_LOG4J" ]] || write_kafka_configs
  kafka_tool "$@"
}

main() {
  local cmd="${1:-}"
  (($# > 0)) && shift
  case "$cmd" in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    kafka-run-class) cmd_kafka_run_class "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
