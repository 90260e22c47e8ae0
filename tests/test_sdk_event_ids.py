"""The SDK's event ids: uuid4 hex, unique, untouched by the application's seed, new in a fork."""

from __future__ import annotations

import os
import random
import uuid

import pytest
from driftline import Client, MemoryTransport
from driftline.event_ids import new_event_id


def test_an_event_id_is_a_version_4_uuid_written_as_uuid4_hex_writes_it() -> None:
    for _ in range(2_000):
        event_id = new_event_id()
        parsed = uuid.UUID(hex=event_id)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert parsed.hex == event_id


def test_event_ids_do_not_repeat_and_use_all_their_random_bits() -> None:
    ids = [new_event_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    # Each of the 122 random bits is set in about half of the ids: none is stuck.
    random_bits = (1 << 128) - 1 & ~((0xF << 76) | (0xC << 60))
    ones = [0] * 128
    for event_id in ids[:20_000]:
        value = int(event_id, 16)
        for bit in range(128):
            ones[bit] += value >> bit & 1
    shares = [ones[bit] / 20_000 for bit in range(128) if random_bits >> bit & 1]
    assert len(shares) == 122
    assert all(0.47 < share < 0.53 for share in shares)


def test_the_applications_own_seed_does_not_repeat_event_ids() -> None:
    """ML code seeds ``random`` everywhere; two runs seeded alike must still get new ids."""
    random.seed(0)
    first = [new_event_id() for _ in range(10)]
    random.seed(0)
    second = [new_event_id() for _ in range(10)]
    assert not set(first) & set(second)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_worker_draws_other_ids_than_its_parent() -> None:
    """Pre-fork servers (gunicorn) copy the generator's state: the child must reseed it."""
    new_event_id()  # the generator exists before the fork, as in a worker of a preloaded app
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(read_end)
            os.write(write_end, ",".join(new_event_id() for _ in range(50)).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_ids = set(pipe.read().decode().split(","))
    os.waitpid(child, 0)
    parent_ids = {new_event_id() for _ in range(50)}
    assert len(child_ids) == 50
    assert not child_ids & parent_ids


def test_log_prediction_returns_such_an_id_unless_given_one() -> None:
    transport = MemoryTransport()
    with Client("credit-risk", "3", transport) as client:
        drawn = client.log_prediction({"age": 42}, 1)
        given = client.log_prediction({"age": 43}, 0, event_id="request-17")
    assert uuid.UUID(hex=drawn).version == 4
    assert given == "request-17"
