#!/bin/bash
# Pre-creates every LiveLens topic (docs/operations.md, "Kafka"), run by the Job livelens-create-topics with
# the services' *_CREATE_TOPICS=false. Idempotent (--if-not-exists): an existing topic is left as it is, so a
# re-run never changes partitions or settings. Name, retention: the contract defaults of
# packages/contracts/src/topics.ts (deploy/k8s/k8s.test.ts checks that they agree).
set -euo pipefail
: "${KAFKA_BROKERS:?}" "${TOPIC_PARTITIONS:?}" "${TOPIC_REPLICATION_FACTOR:?}" "${TOPIC_MIN_INSYNC_REPLICAS:?}"
prefix="${KAFKA_TOPIC_PREFIX:-}"
# The apache/kafka image keeps its scripts there (KAFKA_BIN: another Kafka distribution, or the test's stand-in).
bin="${KAFKA_BIN:-/opt/kafka/bin}"
while read -r name retention_ms; do
  "$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BROKERS" --create --if-not-exists --topic "$prefix$name" \
    --partitions "$TOPIC_PARTITIONS" --replication-factor "$TOPIC_REPLICATION_FACTOR" \
    --config retention.ms="$retention_ms" --config max.message.bytes=4194304 \
    --config min.insync.replicas="$TOPIC_MIN_INSYNC_REPLICAS" --config unclean.leader.election.enable=false
  echo "topic $prefix$name: ok"
done <<'TOPICS'
live.frames.v1 86400000
live.audio.v1 86400000
live.stream-events.v1 2592000000
live.frame-analysis.v1 604800000
live.transcripts.v1 604800000
live.tags.v1 2592000000
live.review.v1 2592000000
live.dlq.v1 2592000000
TOPICS
"$bin/kafka-topics.sh" --bootstrap-server "$KAFKA_BROKERS" --describe --topics-with-overrides \
  | grep "${prefix}live\." || true
