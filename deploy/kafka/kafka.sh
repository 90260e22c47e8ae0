#!/usr/bin/env bash
# A local Apache Kafka broker (one combined broker+controller, KRaft mode, loopback)
# for development, tests, CI and benchmarks, without Docker.
#
#   deploy/kafka/kafka.sh fetch    # download Kafka and its runtime jars into deploy/kafka/lib (Maven)
#   deploy/kafka/kafka.sh start    # format storage if needed, start, wait until it answers
#   deploy/kafka/kafka.sh status   # exit 0 when running and answering
#   deploy/kafka/kafka.sh stop     # stop cleanly (SIGTERM, then SIGKILL after a grace period)
#
# Environment (all optional):
#   KAFKA_PORT             client port (default 9092)
#   KAFKA_CONTROLLER_PORT  controller port (default KAFKA_PORT + 1)
#   KAFKA_STATE_DIR        data, logs and pid file (default ${TMPDIR:-/tmp}/driftline-kafka-$KAFKA_PORT)
#   KAFKA_HEAP_OPTS        JVM heap (default "-Xms128m -Xmx512m": the machine is shared)
#   KAFKA_START_TIMEOUT    seconds to wait for the broker to answer (default 90)
#   KAFKA_SASL_PORT        also listen with SASL_PLAINTEXT on this loopback port (PLAIN,
#                          SCRAM-SHA-256 and SCRAM-SHA-512); unset: no SASL listener
#   KAFKA_SASL_USERS       its users, "name:password name2:password2" (no spaces or
#                          quotes in either); SCRAM credentials are added when the
#                          storage is formatted, so set it before the first start
#   KAFKA_SSL_PORT         also listen with SSL (TLS) on this loopback port; unset: no TLS
#   KAFKA_SSL_PEM          that listener's certificate chain and unencrypted PKCS#8
#                          private key, in one PEM file (needed with KAFKA_SSL_PORT)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LIB="$HERE/lib"
PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
STATE_DIR="${KAFKA_STATE_DIR:-${TMPDIR:-/tmp}/driftline-kafka-$PORT}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
PID_FILE="$STATE_DIR/kafka.pid"
LOG_DIR="$STATE_DIR/logs"
DATA_DIR="$STATE_DIR/data"
PROPERTIES="$STATE_DIR/server.properties"
SASL_PORT="${KAFKA_SASL_PORT:-}"
read -r -a SASL_USERS <<<"${KAFKA_SASL_USERS:-}"
SSL_PORT="${KAFKA_SSL_PORT:-}"
SSL_PEM="${KAFKA_SSL_PEM:-}"

die() { echo "kafka.sh: $*" >&2; exit 1; }

have_jars() { compgen -G "$LIB/kafka_2.13-*.jar" >/dev/null; }

fetch() {
    if have_jars; then
        echo "kafka.sh: jars already in $LIB"
        return 0
    fi
    command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka: apt-get install maven"
    (cd "$HERE" && mvn -q -B dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$LIB") || die "Maven could not fetch Kafka"
    have_jars || die "Maven ran but no kafka_2.13 jar landed in $LIB"
    echo "kafka.sh: fetched $(ls "$LIB" | wc -l) jars into $LIB"
}

java_run() {
    # shellcheck disable=SC2086 # HEAP_OPTS is a list of JVM flags
    exec java $HEAP_OPTS -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        -Dkafka.logs.dir="$LOG_DIR" -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
        -cp "$LIB/*" "$@"
}

running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

answers() {
    # The port accepts connections and the broker logged that it finished starting.
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || return 1
    grep -q "Kafka Server started" "$LOG_DIR/server.log" 2>/dev/null
}

render_properties() {
    local extra=""
    [[ -n "$SASL_PORT" ]] && extra+=",SASL_PLAINTEXT://127.0.0.1:$SASL_PORT"
    [[ -n "$SSL_PORT" ]] && extra+=",SSL://127.0.0.1:$SSL_PORT"
    sed -e "s|@PORT@|$PORT|g" -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
        -e "s|@DATA_DIR@|$DATA_DIR|g" -e "s|@EXTRA_LISTENERS@|$extra|g" \
        "$HERE/server.properties.template" >"$PROPERTIES"
    [[ -n "$SASL_PORT" ]] && sasl_properties >>"$PROPERTIES"
    if [[ -n "$SSL_PORT" ]]; then
        [[ -f "$SSL_PEM" ]] || die "KAFKA_SSL_PORT needs KAFKA_SSL_PEM, a PEM file with certificate and key"
        echo "listener.name.ssl.ssl.keystore.type=PEM"
        echo "listener.name.ssl.ssl.keystore.location=$SSL_PEM"
    fi >>"$PROPERTIES"
    return 0
}

sasl_properties() {
    # PLAIN checks the JAAS user_<name> entries; SCRAM checks the credentials
    # stored in the cluster metadata by format_storage.
    local plain_users="" user
    for user in "${SASL_USERS[@]}"; do
        plain_users+=" user_${user%%:*}=\"${user#*:}\""
    done
    local prefix="listener.name.sasl_plaintext"
    echo "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    echo "$prefix.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$plain_users;"
    echo "$prefix.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
    echo "$prefix.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;"
}

scram_arguments() {
    local user mechanism
    for user in "${SASL_USERS[@]}"; do
        for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
            printf '%s\n' --add-scram "$mechanism=[name=${user%%:*},password=${user#*:}]"
        done
    done
}

format_storage() {
    [[ -f "$DATA_DIR/meta.properties" ]] && return 0
    local cluster_id
    cluster_id="$(java_run kafka.tools.StorageTool random-uuid)"
    local scram=()
    [[ -n "$SASL_PORT" ]] && mapfile -t scram < <(scram_arguments)
    (java_run kafka.tools.StorageTool format --standalone --ignore-formatted \
        -t "$cluster_id" -c "$PROPERTIES" "${scram[@]}") >"$LOG_DIR/format.log" 2>&1 \
        || die "formatting storage failed; see $LOG_DIR/format.log"
}

start() {
    have_jars || die "Kafka jars missing in $LIB: run '$0 fetch' first"
    command -v java >/dev/null || die "Java 17+ is needed: apt-get install openjdk-17-jre-headless"
    if pid="$(running_pid)"; then
        echo "kafka.sh: already running (pid $pid) on 127.0.0.1:$PORT"
        return 0
    fi
    mkdir -p "$LOG_DIR" "$DATA_DIR"
    render_properties
    format_storage
    # A restart must wait for the new server's line, not find the old one.
    : >"$LOG_DIR/server.log"
    # java_run execs, so $! is the JVM's own pid.
    (trap '' HUP; java_run kafka.Kafka "$PROPERTIES") >"$LOG_DIR/stdout.log" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    local waited=0
    until answers; do
        if ! running_pid >/dev/null; then
            tail -n 30 "$LOG_DIR/stdout.log" "$LOG_DIR/server.log" >&2 || true
            die "the broker exited during start; logs in $LOG_DIR"
        fi
        if ((waited >= START_TIMEOUT * 4)); then
            stop >/dev/null
            die "the broker did not answer within ${START_TIMEOUT}s; logs in $LOG_DIR"
        fi
        sleep 0.25
        waited=$((waited + 1))
    done
    echo "kafka.sh: running (pid $(cat "$PID_FILE")) on 127.0.0.1:$PORT; state in $STATE_DIR"
}

stop() {
    local pid
    if ! pid="$(running_pid)"; then
        echo "kafka.sh: not running"
        rm -f "$PID_FILE"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "kafka.sh: broker did not stop in 30s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    echo "kafka.sh: stopped"
}

status() {
    if pid="$(running_pid)" && answers; then
        echo "kafka.sh: running (pid $pid) on 127.0.0.1:$PORT"
        return 0
    fi
    echo "kafka.sh: not running on 127.0.0.1:$PORT"
    return 1
}

case "${1:-}" in
    fetch) fetch ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 fetch|start|stop|status" >&2; exit 2 ;;
esac
