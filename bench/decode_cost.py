"""Cost of decoding an event: the collector's decoder and ``driftline.schema.decode``, against ``json.loads``.

Both decoders parse and validate one message completely (duplicate keys,
numbers a float64 cannot hold, lone surrogates in keys and values, every
field's type and range), so the collector never fails on an event it
accepted. ``driftline.schema.decode`` (stdlib ``json`` and checks in Python)
is the reference; the collector's ``collector.fast_decode.decode`` (msgspec
typed structs, the reference for what they refuse) gives the same results.
The baseline is ``json.loads`` alone, the floor of any stdlib consumer of the
wire format; all run on the same seeded messages in this run, best of
``--rounds``.

    .venv/bin/python bench/decode_cost.py [--full] [--events N] [--rounds N] [--seed 0]

(quick: 20,000 events, 3 rounds; ``--full``: 20,000 events, 7 rounds).

Prints microseconds per event for each and the ratios to json.loads and of the
collector's decoder to the reference. To compare another version of the
schema, put its ``sdk`` folder first on PYTHONPATH (the script prints which
``driftline.schema`` it measured).
"""

from __future__ import annotations

import argparse
import json
import random

import driftline.schema
import harness
from driftline.schema import Prediction, decode, encode

from collector import fast_decode


def messages(count: int, seed: int) -> list[bytes]:
    """Predictions shaped like the Kafka benchmark's: 12 features, probabilities, a segment."""
    rng = random.Random(seed)
    out = []
    for i in range(count):
        features: dict[str, float | str] = {f"x{j}": rng.gauss(j, 1.0) for j in range(10)}
        features["region"] = rng.choice(["eu", "us", "apac"])
        features["plan"] = rng.choice(["free", "pro"])
        p = rng.random()
        event = Prediction(
            event_id=f"e{i}",
            model="credit-risk",
            model_version="1",
            features=features,
            prediction=int(p >= 0.5),
            probabilities={"0": 1 - p, "1": p},
            timestamp=1.7e9 + i,
            latency_ms=rng.uniform(1, 20),
            segments={"region": str(features["region"])},
        )
        out.append(encode(event))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, help="messages (20,000)")
    parser.add_argument("--rounds", type=int, help="rounds, best kept (quick 3, full 7)")
    parser.add_argument("--seed", type=int, default=0)
    args, chosen = harness.parse(
        parser, quick={"events": 20_000, "rounds": 3}, full={"events": 20_000, "rounds": 7}
    )
    run = harness.BenchRun("decode_cost", args, chosen)
    batch = messages(args.events, args.seed)
    baseline = harness.best_seconds(lambda b: [json.loads(m) for m in b], batch, args.rounds)
    full = harness.best_seconds(lambda b: [decode(m) for m in b], batch, args.rounds)
    fast = harness.best_seconds(lambda b: [fast_decode.decode(m) for m in b], batch, args.rounds)
    per_event = {
        "json.loads": baseline / len(batch) * 1e6,
        "decode": full / len(batch) * 1e6,
        "fast_decode": fast / len(batch) * 1e6,
    }
    print(f"driftline.schema from {driftline.schema.__file__}")
    print(f"{len(batch)} events, best of {args.rounds} rounds")
    run.figure("schema", driftline.schema.__file__)
    run.compare("schema.decode", per_event["decode"], per_event["json.loads"], "json.loads", "us/event")
    run.compare("collector's decode", per_event["fast_decode"], per_event["json.loads"], "json.loads",
                "us/event")
    run.compare("collector's decode", per_event["fast_decode"], per_event["decode"], "schema.decode",
                "us/event")
    run.write()


if __name__ == "__main__":
    main()
