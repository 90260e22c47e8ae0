"""Event ids for the serving path: uuid4 hex strings drawn without a system call.

``uuid.uuid4()`` reads 16 bytes from ``os.urandom``, a system call that
releases the GIL. On the serving path that release hands the GIL to the
client's sender thread, and the caller then waits for it to come back: the
tail latency of ``log_prediction``. Here the 128 bits come from a private
``random.Random`` seeded once from ``os.urandom`` (a fresh seed in every
forked child, so gunicorn-style workers never repeat each other's ids),
which an application's own ``random.seed`` does not touch.

The ids are unique, not secret: like any uuid4 they must not serve as
credentials.

>>> event_id = new_event_id()
>>> len(event_id), event_id[12], event_id[16] in "89ab"
(32, '4', True)
>>> import uuid
>>> uuid.UUID(hex=event_id).version
4
"""

from __future__ import annotations

import os
import random
import threading

_VERSION_4 = 0x4 << 76
_VARIANT_RFC_4122 = 0x8 << 60
_CLEAR_VERSION_AND_VARIANT = ~((0xF << 76) | (0xC << 60)) & ((1 << 128) - 1)

_generator: random.Random | None = None
_start_lock = threading.Lock()


def new_event_id() -> str:
    """A random uuid4 as 32 lowercase hex digits, as ``uuid.uuid4().hex`` writes it."""
    bits = (_generator or _start()).getrandbits(128)
    return f"{(bits & _CLEAR_VERSION_AND_VARIANT) | _VERSION_4 | _VARIANT_RFC_4122:032x}"


def _start() -> random.Random:
    """Seed the generator on first use and have every forked child reseed its copy."""
    global _generator
    with _start_lock:
        if _generator is None:
            _generator = random.Random(os.urandom(32))
            os.register_at_fork(after_in_child=_reseed)
        return _generator


def _reseed() -> None:
    if _generator is not None:
        _generator.seed(os.urandom(32))
