"""The Kafka dead-letter sink: rejected input goes to ``driftline.dlq`` as it arrived.

Each dead letter is the ORIGINAL message bytes, with headers (docs/contracts.md#dead-letters)
``driftline.reason``, ``driftline.field``,
``driftline.source.topic``, ``driftline.source.partition`` and
``driftline.source.offset`` (UTF-8 text). The runner flushes the sink before it
commits the source's offsets, so a dead letter is durable before the message
it replaces is marked as processed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from driftline.schema import SchemaError
from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError

from collector.errors import DeadLetterBacklog, SourceError
from collector.sources import RawMessage

logger = logging.getLogger(__name__)

# Room for headers under the broker's default message.max.bytes (1,048,588).
MAX_DEAD_LETTER_BYTES = 1_000_000


def dead_letter_headers(message: RawMessage, error: SchemaError) -> list[tuple[str, bytes]]:
    """The contract's headers for one rejected message."""
    return [
        ("driftline.reason", error.reason.value.encode("utf-8")),
        ("driftline.field", error.field.encode("utf-8")),
        ("driftline.source.topic", message.topic.encode("utf-8")),
        ("driftline.source.partition", str(message.partition).encode("ascii")),
        ("driftline.source.offset", str(message.offset).encode("ascii")),
    ]


class KafkaDeadLetterSink:
    """A :class:`~collector.dlq.DeadLetterSink` writing to a Kafka topic.

    Args:
        bootstrap_servers: ``host:port[,host:port...]``.
        topic: the dead-letter topic.
        flush_timeout: how long :meth:`flush` waits for the broker (it retries
            through a broker restart meanwhile) before it raises
            :class:`~collector.errors.SourceError` so offsets are not committed.
        **producer_options: any other ``kafka.KafkaProducer`` option.
    """

    def __init__(
        self,
        bootstrap_servers: str | list[str],
        topic: str = "driftline.dlq",
        *,
        flush_timeout: float = 120.0,
        **producer_options: Any,
    ) -> None:
        if flush_timeout <= 0:
            raise ValueError(f"flush_timeout must be > 0, got {flush_timeout}")
        self.topic = topic
        self.flush_timeout = flush_timeout
        self.written = 0
        self._failures: list[BaseException] = []
        self._lock = threading.Lock()
        options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "client_id": "driftline-collector-dlq",
        }
        options.update(producer_options)
        try:
            self._producer: KafkaProducer | None = KafkaProducer(**options)
        except KafkaError as exc:
            raise SourceError(
                f"cannot start the dead-letter producer at {bootstrap_servers}: {exc}"
            ) from exc

    def write(self, message: RawMessage, error: SchemaError) -> None:
        """Send the original bytes with the rejection's headers (durable after :meth:`flush`)."""
        producer = self._open()
        headers = dead_letter_headers(message, error)
        value = message.value
        if len(value) > MAX_DEAD_LETTER_BYTES:
            headers.append(("driftline.truncated_from", str(len(value)).encode("ascii")))
            value = value[:MAX_DEAD_LETTER_BYTES]
        try:
            future = producer.send(self.topic, value=value, headers=headers)
        except MessageSizeTooLargeError as exc:
            raise SourceError(f"a dead letter of {len(value)} bytes is too large: {exc}") from exc
        except KafkaError as exc:
            raise SourceError(f"cannot write to the dead-letter topic {self.topic}: {exc}") from exc
        future.add_errback(self._failed)
        self.written += 1

    def flush(self) -> None:
        """Wait until every dead letter is acknowledged; raise if one was refused."""
        producer = self._open()
        deadline = time.monotonic() + self.flush_timeout
        while True:
            try:
                producer.flush(timeout=min(5.0, max(0.1, deadline - time.monotonic())))
                break
            except KafkaError as exc:
                if time.monotonic() >= deadline:
                    raise DeadLetterBacklog(
                        f"dead letters not acknowledged within {self.flush_timeout:g}s: {exc}"
                    ) from exc
                logger.warning("waiting for the broker to acknowledge dead letters: %s", exc)
        with self._lock:
            failures, self._failures = self._failures, []
        if failures:
            raise SourceError(
                f"{len(failures)} dead letters were refused by Kafka: {failures[0]}"
            ) from failures[0]

    def close(self) -> None:
        """Deliver what is pending and close; safe twice."""
        producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=10)

    def _open(self) -> KafkaProducer:
        if self._producer is None:
            raise SourceError(f"the dead-letter sink for {self.topic} is closed")
        return self._producer

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._failures.append(exc)
