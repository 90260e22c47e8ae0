"""Deliver events to Kafka (docs/contracts.md#event-schema), for :class:`driftline.client.Client`.

Needs the ``kafka`` extra (``pip install 'driftline[kafka]'``, kafka-python).
Messages are keyed by model name and placed by kafka-python's default murmur2
partitioner (the Java client's), so one model's events share a partition
whoever produced them. Labels go to the labels topic; predictions and
heartbeats to the predictions topic.

The producer is idempotent with ``acks=all`` and batches for ``linger_ms``.
``send`` runs on the client's sender thread, never on the serving path, and
never blocks longer than ``max_block_ms``: when the broker is down and the
topic's metadata is unknown, or the producer's buffer is full, it raises
:class:`KafkaTransportError` after that long and the client counts the event as
failed. It waits in slices of at most half a second, so :meth:`KafkaTransport.abort`
(from ``Client.close``) ends the wait at once; a producer still bootstrapping
(its constructor blocks for a slice) is woken and gives up too. The producer itself is created
on the first ``send``, so building a client while the broker is down neither
blocks nor fails. ``close`` stops the producer's thread even when messages
cannot be delivered (the broker is down): they count as failed.

>>> transport = KafkaTransport("localhost:9092")  # connects on the first send
>>> transport.topic_for(b'{"type":"label","schema_version":1}')
'driftline.labels'
>>> transport.close()
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.net.compat import KafkaNetClient

# schema.encode writes "type" first, so a label's payload starts with this.
_LABEL_PREFIX = b'{"type":"label"'
_SLICE_MS = 500
"""The longest one blocking producer call waits before the transport checks for abort()."""


class KafkaTransportError(Exception):
    """Kafka refused or could not take a message in time (the client counts it as failed)."""


class KafkaTransport:
    """A :class:`~driftline.transports.Transport` over a kafka-python producer.

    Args:
        bootstrap_servers: ``host:port[,host:port...]`` of the brokers.
        topic_predictions: topic for predictions and heartbeats.
        topic_labels: topic for labels.
        max_block_ms: the longest one ``send`` may block (connecting, metadata, full
            buffer). Only the client's sender thread waits; a loaded machine needs
            a few seconds for a new topic's metadata.
        linger_ms: how long the producer waits to fill a batch.
        **producer_options: any other ``kafka.KafkaProducer`` option (security,
            compression, ``api_version``...); they override the defaults here.
    """

    def __init__(
        self,
        bootstrap_servers: str | list[str],
        topic_predictions: str = "driftline.predictions",
        topic_labels: str = "driftline.labels",
        *,
        max_block_ms: int = 5000,
        linger_ms: int = 20,
        **producer_options: Any,
    ) -> None:
        if max_block_ms < 0:
            raise ValueError(f"max_block_ms must be >= 0, got {max_block_ms}")
        if linger_ms < 0:
            raise ValueError(f"linger_ms must be >= 0, got {linger_ms}")
        self.bootstrap_servers = bootstrap_servers
        self.topic_predictions = topic_predictions
        self.topic_labels = topic_labels
        self.max_block_ms = max_block_ms
        self.linger_ms = linger_ms
        self.producer_options = producer_options
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()
        self._in_flight = 0
        self._failed_since_flush = 0
        self.failed_total = 0
        """Messages accepted by ``send`` that Kafka later refused (after its retries)."""
        self._closed = False
        self._aborted = threading.Event()
        self._booting: KafkaNetClient | None = None
        """The network client of a producer under construction, for abort() to wake."""

    def topic_for(self, payload: bytes) -> str:
        """The topic of one encoded event, from its leading ``type`` field."""
        return self.topic_labels if payload.startswith(_LABEL_PREFIX) else self.topic_predictions

    def send(self, key: str, payload: bytes) -> None:
        """Hand one message to the producer; raise :class:`KafkaTransportError` if it cannot."""
        deadline = time.monotonic() + self.max_block_ms / 1000
        producer = self._connect(deadline)
        with self._lock:
            self._in_flight += 1
        try:
            future = self._send_until(producer, deadline, key.encode("utf-8"), payload)
        except KafkaError as exc:
            with self._lock:
                self._in_flight -= 1
            raise KafkaTransportError(f"kafka did not take the message: {exc}") from exc
        future.add_callback(self._delivered)
        future.add_errback(self._failed)

    def abort(self) -> None:
        """Stop delivering (``Client.close`` out of time): a blocked ``send`` gives up now, later
        ones fail, and :meth:`close` waits no more.

        A producer's constructor blocks in its bootstrap for up to a slice, which
        ``Client.close`` may not have left: its connection manager is closed on its
        own event loop, which ends the bootstrap at once.
        """
        with self._lock:
            self._aborted.set()
            client = self._booting
        if client is not None:
            with contextlib.suppress(RuntimeError):  # its loop is closed: it is done already
                client._net.call_soon_threadsafe(client._manager.close)

    def _send_until(self, producer: KafkaProducer, deadline: float, key: bytes, value: bytes) -> Any:
        """``producer.send``, retried while it times out (one slice) until ``deadline`` or abort."""
        while True:
            self._check_open()
            try:
                return producer.send(self.topic_for(value), value=value, key=key)
            except KafkaTimeoutError:
                if time.monotonic() >= deadline:
                    raise

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds; return how many messages sent since the last flush
        were not delivered (refused, or still in flight when the time ran out)."""
        producer = self._producer
        if producer is not None:
            # A timeout is not an error here: what is still in flight is counted below.
            with contextlib.suppress(KafkaError):
                producer.flush(timeout=max(0.0, timeout))
        with self._lock:
            undelivered = self._in_flight + self._failed_since_flush
            self._failed_since_flush = 0
        return undelivered

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what the producer holds (up to ``timeout`` seconds), then close; safe twice.

        What is still undelivered then is dropped (counted as failed) and the
        producer's thread is stopped, even with the broker down. After
        :meth:`abort` nothing more is waited for.
        """
        if self._aborted.is_set():
            timeout = 0.0
        self._closed = True
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is None:
            return
        # A timeout is not an error: what is left is aborted below.
        with contextlib.suppress(KafkaError):
            producer.flush(timeout=max(0.0, timeout))
        # kafka-python's close(timeout) raises, and leaves its thread running, when its
        # own flush times out; its sender's force_close() fails the pending batches first.
        producer._sender.force_close()
        producer._sender.join(_SLICE_MS / 1000)
        with contextlib.suppress(KafkaError):
            producer.close(timeout=0)

    def _check_open(self) -> None:
        if self._closed or self._aborted.is_set():
            raise KafkaTransportError("the transport is closed")

    def _connect(self, deadline: float) -> KafkaProducer:
        """The producer, created on the first call; bootstrap is retried in slices until ``deadline``."""
        while True:
            self._check_open()
            with self._lock:
                if self._producer is not None:
                    return self._producer
            try:
                producer = KafkaProducer(**self._options())
                break
            except KafkaError as exc:
                self._check_open()
                if time.monotonic() >= deadline:
                    raise KafkaTransportError(
                        f"cannot reach Kafka at {self.bootstrap_servers}: {exc}"
                    ) from exc
            finally:
                with self._lock:
                    self._booting = None
        with self._lock:
            if self._producer is None and not self._closed:
                self._producer = producer
                return producer
            existing = self._producer
        producer.close(timeout=0)
        if existing is None:
            raise KafkaTransportError("the transport is closed")
        return existing

    def _network_client(self, **configs: Any) -> KafkaNetClient:
        """The producer's network client, kept where abort() can stop its bootstrap."""
        client = KafkaNetClient(**configs)
        with self._lock:
            self._booting = client
            aborted = self._aborted.is_set()
        if aborted:
            client._manager.close()
        return client

    def _options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": self.linger_ms,
            "batch_size": 64 * 1024,
            "max_block_ms": min(self.max_block_ms, _SLICE_MS),
            "bootstrap_timeout_ms": max(min(self.max_block_ms, _SLICE_MS), 1),
            "reconnect_backoff_max_ms": 1000,
            "client_id": "driftline-sdk",
            "kafka_client": self._network_client,
        }
        options.update(self.producer_options)
        return options

    def _delivered(self, _metadata: object) -> None:
        with self._lock:
            self._in_flight -= 1

    def _failed(self, _exc: BaseException) -> None:
        with self._lock:
            self._in_flight -= 1
            self._failed_since_flush += 1
            self.failed_total += 1
