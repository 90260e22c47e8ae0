"""The Kafka source, SDK transport and dead-letter sink against a real broker.

Every test uses its own topics and consumer group, so they share one broker.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import uuid

import pytest
from driftline import Client, Label, Prediction, RejectReason, SchemaError, decode
from driftline.kafka_transport import KafkaTransport, KafkaTransportError
from kafka import KafkaConsumer
from kafka.errors import RebalanceInProgressError
from kafka.partitioner.default import murmur2
from kafka.structs import TopicPartition

from collector.config import confluent_installed
from collector.errors import SourceError
from collector.kafka_dlq import KafkaDeadLetterSink
from collector.kafka_source import KafkaSource
from collector.sources import GroupSource, RawMessage, Source
from exporters.store import MetricStore
from tests.conftest import free_port, require, require_binary
from tests.kafka_fixture import KafkaBroker, create_topics, unique_topic

pytestmark = pytest.mark.integration


def read_all(source: Source, count: int, timeout: float = 30.0) -> list[RawMessage]:
    """Read until ``count`` messages arrived (or fail after ``timeout`` seconds)."""
    messages: list[RawMessage] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        messages.extend(source.next_batch(min(500, count - len(messages)), 0.5))
    assert len(messages) == count, f"read {len(messages)} of {count} messages"
    return messages


def new_source(bootstrap: str, topics: list[str], **options: object) -> KafkaSource:
    return KafkaSource(bootstrap, topics, f"test-group-{uuid.uuid4().hex[:8]}", **options)  # type: ignore[arg-type]


def topic_with_numbered_messages(bootstrap: str, name: str, count: int) -> str:
    """A new one-partition topic holding ``count`` messages ``{"n": 0}``, ``{"n": 1}``, ..."""
    topic = unique_topic(name)
    create_topics(bootstrap, [topic])
    transport = KafkaTransport(bootstrap, topic, topic)
    try:
        for i in range(count):
            transport.send("m", f'{{"n":{i}}}'.encode())
        assert transport.flush(20.0) == 0
    finally:
        transport.close()
    return topic


def partition_for(model: str, partitions: int) -> int:
    """Where the Java client (and kafka-python by default) puts a key: toPositive(murmur2) % n."""
    return int(murmur2(model.encode()) & 0x7FFFFFFF) % partitions


def test_sdk_events_are_all_read_back_on_their_topics_and_partitions(
    kafka_broker: KafkaBroker,
) -> None:
    predictions, labels = unique_topic("pred"), unique_topic("label")
    create_topics(kafka_broker.bootstrap, [predictions, labels], partitions=3)
    models = ["credit-risk", "churn", "fraud.v2"]
    sent: dict[str, list[str]] = {}
    for model in models:
        transport = KafkaTransport(kafka_broker.bootstrap, predictions, labels)
        with Client(model, "3", transport) as client:
            ids = [client.log_prediction({"x": i, "region": "eu"}, i % 2) for i in range(100)]
            for event_id in ids[:40]:
                client.log_label(event_id, 1)
            assert client.flush(timeout=20.0) == 0
        sent[model] = ids
    source = new_source(kafka_broker.bootstrap, [predictions, labels])
    try:
        messages = read_all(source, 3 * 140)
    finally:
        source.close()
    for message in messages:
        event = decode(message.value)
        assert message.topic == (labels if isinstance(event, Label) else predictions)
        assert message.partition == partition_for(event.model, 3)
    got = set()
    for message in messages:
        event = decode(message.value)
        if isinstance(event, Prediction):
            got.add((event.model, event.event_id))
    assert got == {(model, event_id) for model, ids in sent.items() for event_id in ids}


def test_kcat_events_follow_the_contract_and_land_with_the_sdk_partitioning(
    kafka_broker: KafkaBroker,
) -> None:
    kcat = require_binary("kcat")
    topic = unique_topic("kcat")
    create_topics(kafka_broker.bootstrap, [topic], partitions=4)
    models = ["credit-risk", "churn", "a", "model_7"]
    lines = []
    for i in range(40):
        model = models[i % 4]
        payload = {"type": "prediction", "schema_version": 1, "event_id": f"k{i}", "model": model,
                 "model_version": "1", "timestamp": "2026-05-01T12:00:00Z",
                 "features": {"age": 30 + i, "region": "eu"}, "prediction": i % 2}
        lines.append(f"{model}|{json.dumps(payload)}")
    subprocess.run(
        [kcat, "-P", "-b", kafka_broker.bootstrap, "-t", topic, "-K", "|",
         "-X", "partitioner=murmur2_random"],
        input="\n".join(lines) + "\n", text=True, check=True, timeout=60,
    )
    source = new_source(kafka_broker.bootstrap, [topic])
    try:
        messages = read_all(source, 40)
    finally:
        source.close()
    events = [decode(m.value) for m in messages]
    assert all(isinstance(event, Prediction) for event in events)
    assert sorted(event.event_id for event in events) == sorted(f"k{i}" for i in range(40))  # type: ignore[union-attr]
    for message, event in zip(messages, events, strict=True):
        assert message.partition == partition_for(event.model, 4)
    assert events[0].timestamp == pytest.approx(1777636800.0)


def test_dead_letters_carry_the_original_bytes_and_the_contract_headers(
    kafka_broker: KafkaBroker,
) -> None:
    dlq_topic = unique_topic("dlq")
    bad = [b"\xff\xfe not utf-8", b'{"type":"prediction","schema_version":2}', b"[1, 2]"]
    sink = KafkaDeadLetterSink(kafka_broker.bootstrap, dlq_topic)
    try:
        for offset, value in enumerate(bad):
            try:
                decode(value)
            except SchemaError as error:
                sink.write(RawMessage(value, "driftline.predictions", 2, 100 + offset, 0.0), error)
        sink.flush()
    finally:
        sink.close()
    sink.close()
    consumer = KafkaConsumer(dlq_topic, bootstrap_servers=kafka_broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=15_000)
    try:
        records = [record for _, record in zip(range(3), consumer, strict=False)]
    finally:
        consumer.close()
    assert [record.value for record in records] == bad
    headers = [{key: value.decode() for key, value in record.headers} for record in records]
    assert [h["driftline.reason"] for h in headers] == [
        RejectReason.INVALID_JSON.value, RejectReason.UNSUPPORTED_SCHEMA_VERSION.value,
        RejectReason.INVALID_JSON.value,
    ]
    assert headers[1]["driftline.field"] == "schema_version"
    assert {h["driftline.source.topic"] for h in headers} == {"driftline.predictions"}
    assert [h["driftline.source.partition"] for h in headers] == ["2", "2", "2"]
    assert [h["driftline.source.offset"] for h in headers] == ["100", "101", "102"]


def test_commit_makes_a_restarted_member_resume_after_the_processed_messages(
    kafka_broker: KafkaBroker,
) -> None:
    topic = topic_with_numbered_messages(kafka_broker.bootstrap, "commit", 30)
    group = f"test-group-{uuid.uuid4().hex[:8]}"
    first = KafkaSource(kafka_broker.bootstrap, [topic], group, max_poll_records=10)
    try:
        batch = read_all(first, 10)
        first.commit()
        assert first.snapshot() == {topic: {0: 10}}
        read_all(first, 5)  # handed out, never committed: must come again
    finally:
        first._closed = True  # simulate a crash: leave without the closing commit
        first._consumer.close(autocommit=False)
    second = KafkaSource(kafka_broker.bootstrap, [topic], group)
    try:
        rest = read_all(second, 20)
    finally:
        second.close()
    assert [m.offset for m in batch] == list(range(10))
    assert [m.offset for m in rest] == list(range(10, 30))
    assert json.loads(rest[0].value) == {"n": 10}



def test_closing_commits_nothing_handed_out_after_the_last_commit(kafka_broker: KafkaBroker) -> None:
    """A batch cut short by an error must be read again: closing used to commit it as processed."""
    topic = topic_with_numbered_messages(kafka_broker.bootstrap, "cut-short", 20)
    source = new_source(kafka_broker.bootstrap, [topic], max_poll_records=10)
    tp = TopicPartition(topic, 0)
    try:
        first = read_all(source, 10)
        source.commit()
        second = read_all(source, 10)  # handed out; the pipeline failed on it: never committed
    finally:
        source.close()
    assert [m.offset for m in first + second] == list(range(20))
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=source.group_id)
    try:
        assert consumer.committed(tp) == 10
    finally:
        consumer.close()

def test_a_commit_during_a_rebalance_is_retried_with_the_next_commit(
    kafka_broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """The broker answers REBALANCE_IN_PROGRESS to a commit sent while the group rebalances
    (a collector died on it in the scale-out test). No test can time a real rebalance to the
    commit, so the consumer's commit raises that error once; the broker is real otherwise."""
    topic = topic_with_numbered_messages(kafka_broker.bootstrap, "rebalancing", 10)
    group = f"test-group-{uuid.uuid4().hex[:8]}"
    source = KafkaSource(kafka_broker.bootstrap, [topic], group)
    try:
        read_all(source, 10)
        real_commit = source._consumer.commit
        answers = iter([RebalanceInProgressError("the group is rebalancing")])

        def commit_during_rebalance(**kwargs: object) -> None:
            error = next(answers, None)
            if error is not None:
                raise error
            real_commit(**kwargs)

        monkeypatch.setattr(source._consumer, "commit", commit_during_rebalance)
        with caplog.at_level(logging.WARNING, logger="collector.kafka_source"):
            source.commit()
        assert "will retry with the next batch" in caplog.text
        assert source._consumer.committed(TopicPartition(topic, 0)) is None
        source.commit()
        assert source._consumer.committed(TopicPartition(topic, 0)) == 10
    finally:
        source.close()


@pytest.mark.parametrize("kafka_client", ["kafka-python", "confluent"])
def test_lag_is_exported_per_partition_and_pause_stops_fetching(
    kafka_broker: KafkaBroker, kafka_client: str
) -> None:
    topic = topic_with_numbered_messages(kafka_broker.bootstrap, "lag", 50)
    store = MetricStore()
    source: GroupSource
    if kafka_client == "confluent":
        require(confluent_installed(), "confluent-kafka is missing: pip install '.[confluent]'")
        from collector.confluent_source import ConfluentSource

        source = ConfluentSource(kafka_broker.bootstrap, [topic], f"test-group-{uuid.uuid4().hex[:8]}",
                                 store=store, max_poll_records=10)
    else:
        source = new_source(kafka_broker.bootstrap, [topic], store=store, max_poll_records=10)
    try:
        assert [m.offset for m in read_all(source, 10)] == list(range(10))
        assert store.get("driftline_consumer_lag", {"topic": topic, "partition": "0"}) == 40
        source.pause()
        assert source.paused
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            assert source.next_batch(100, 0.2) == []
        source.resume()
        assert [m.offset for m in read_all(source, 40)] == list(range(10, 50))
        assert store.get("driftline_consumer_lag", {"topic": topic, "partition": "0"}) == 0
        source.commit()
        assert source.snapshot() == {topic: {0: 50}}
    finally:
        source.close()


def test_a_second_member_takes_partitions_and_revoke_is_reported(kafka_broker: KafkaBroker) -> None:
    topic = unique_topic("rebalance")
    create_topics(kafka_broker.bootstrap, [topic], partitions=4)
    group = f"test-group-{uuid.uuid4().hex[:8]}"
    revoked: list[tuple[str, int]] = []
    store = MetricStore()
    first = KafkaSource(kafka_broker.bootstrap, [topic], group, store=store,
                        on_revoke=revoked.extend, session_timeout_ms=6000)
    second = KafkaSource(kafka_broker.bootstrap, [topic], group, session_timeout_ms=6000)
    try:
        deadline = time.monotonic() + 30
        while len(first.assignment()) != 4 and time.monotonic() < deadline:
            first.next_batch(10, 0.2)
        assert len(first.assignment()) == 4
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            len(first.assignment()) + len(second.assignment()) != 4 or not second.assignment()
        ):
            first.next_batch(10, 0.1)
            second.next_batch(10, 0.1)
        assert len(first.assignment()) == 2 and len(second.assignment()) == 2
        assert first.assignment().isdisjoint(second.assignment())
        assert set(revoked) >= second.assignment()
    finally:
        second.close()
        first.close()


def test_send_returns_promptly_and_flush_reports_when_no_broker_answers() -> None:
    transport = KafkaTransport(f"127.0.0.1:{free_port()}", "p", "l", max_block_ms=300)
    started = time.monotonic()
    with pytest.raises(KafkaTransportError):
        transport.send("m", b'{"type":"prediction"}')
    assert time.monotonic() - started < 5.0
    client = Client("m", "1", transport, max_queue=50)
    started = time.monotonic()
    for i in range(200):
        client.log_prediction({"x": i}, 0)
    assert time.monotonic() - started < 1.0  # the serving path never waits for Kafka
    started = time.monotonic()
    client.close(timeout=2.0)
    assert time.monotonic() - started < 4.0  # close is bounded too
    stats = client.stats
    assert stats.sent == 0
    assert stats.dropped_queue_full >= 150
    assert stats.failed >= 1  # each failed send waited max_block_ms, no longer
    assert stats.failed + stats.dropped_queue_full + stats.pending == 200


def test_a_source_at_an_unreachable_broker_fails_with_a_source_error() -> None:
    with pytest.raises(SourceError):
        KafkaSource(f"127.0.0.1:{free_port()}", ["t"], "g", request_timeout_ms=1000,
                    bootstrap_timeout_ms=1000)


def test_a_dead_letter_over_the_size_limit_is_cut_and_says_how_long_it_was(
    kafka_broker: KafkaBroker,
) -> None:
    dlq_topic = unique_topic("dlq-big")
    value = b"x" * 1_200_000
    sink = KafkaDeadLetterSink(kafka_broker.bootstrap, dlq_topic)
    try:
        sink.write(RawMessage(value, "p", 0, 7, 0.0), SchemaError(RejectReason.OVERSIZE, "", "big"))
        sink.flush()
    finally:
        sink.close()
    consumer = KafkaConsumer(dlq_topic, bootstrap_servers=kafka_broker.bootstrap,
                             auto_offset_reset="earliest", consumer_timeout_ms=15_000)
    try:
        record = next(iter(consumer))
    finally:
        consumer.close()
    headers = {key: header.decode() for key, header in record.headers}
    assert record.value == value[:1_000_000]
    assert headers["driftline.truncated_from"] == "1200000"
    assert headers["driftline.reason"] == "oversize"
    assert headers["driftline.source.offset"] == "7"
