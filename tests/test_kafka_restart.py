"""A broker restart under a running source and transport: nothing crashes, nothing is lost.

Uses its own broker (started and stopped here), never the shared session one.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from driftline.kafka_transport import KafkaTransport

from collector.kafka_source import KafkaSource
from collector.sources import RawMessage
from tests.kafka_fixture import KafkaBroker, create_topics, local_broker, unique_topic

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker() -> Iterator[KafkaBroker]:
    with local_broker("driftline-kafka-restart-") as broker:
        yield broker


def read_until(source: KafkaSource, count: int, timeout: float) -> list[RawMessage]:
    messages: list[RawMessage] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count and time.monotonic() < deadline:
        messages.extend(source.next_batch(count - len(messages), 0.5))
        source.commit()
    return messages


def test_source_and_transport_ride_through_a_broker_restart(own_broker: KafkaBroker) -> None:
    topic = unique_topic("restart")
    create_topics(own_broker.bootstrap, [topic])
    transport = KafkaTransport(own_broker.bootstrap, topic, topic, max_block_ms=500)
    source = KafkaSource(own_broker.bootstrap, [topic], f"g-{uuid.uuid4().hex[:8]}")
    try:
        for i in range(20):
            transport.send("m", f'{{"n":{i}}}'.encode())
        assert transport.flush(20.0) == 0
        assert len(read_until(source, 20, 30.0)) == 20

        own_broker.stop()
        started = time.monotonic()
        for i in range(20, 30):  # metadata is known: these wait in the producer's buffer
            transport.send("m", f'{{"n":{i}}}'.encode())
        assert time.monotonic() - started < 2.0
        assert transport.flush(1.0) == 10  # not delivered while the broker is down
        for _ in range(5):  # polling a dead broker returns nothing and raises nothing
            assert source.next_batch(100, 0.2) == []
        source.commit()

        own_broker.start()
        assert transport.flush(60.0) == 0
        rest = read_until(source, 10, 60.0)
    finally:
        source.close()
        transport.close()
    assert sorted(int(m.value[5:-1]) for m in rest) == list(range(20, 30))
