"""False alarms and detection delay: Evidently's DataDriftPreset defaults vs Driftline's modes.

No-drift windows of 1,000 rows (20 features: 15 numbers, 5 categories) are
drawn from the same seeded distribution as the reference, with a reference of
50,000 rows and of 1,000 rows. The reference is redrawn every ``--stream``
windows, so the rates average over the reference's own sampling error too.
Printed per reference size, for Evidently's preset, Driftline's
``mode="evidently"`` (Evidently's rules and thresholds, equal to the preset by
the parity tests, so it can run on many more windows) and Driftline's
calibrated mode: the share of windows with any feature flagged (the
family-wise false-alarm rate) and the share flagged as dataset drift. Then
shifts are injected (mean shifts of 0.1, 0.25, 0.5 and 1 standard deviation
in 2 numerical features; a swap of the two most frequent categories in one
categorical feature) and the share of windows in which a shifted feature is
flagged, and the windows until the first flag, are printed beside the flag
rate of an ideal test (a z-test on the mean at the same family-wise alpha):
on one window at alpha / 20, and on the pooled windows at alpha / 40 (the
level of calibrated mode's pooled test). Calibrated mode runs three times:
with its defaults (alpha 0.01, 4 pooled windows), on each window alone
(``pooled_windows=1``), and with its alpha set to the false-alarm rate just
measured for evidently mode, so that the two detect at the same false-alarm
budget. The ideal columns are at the row's alpha (0.01 for evidently mode).

Run: ``.venv/bin/python bench/false_alarms.py --full`` (about 20 minutes on 2 cores); without
``--full`` a twentieth of the windows (quick: 50 no-drift windows per mode, 2 for the preset, 10
per shift scenario), enough to see that it runs and the rates' order, not their second digit.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import harness
import numpy as np
import pandas as pd
from scipy import special

from detectors.base import FeatureKind, FeatureTable
from detectors.data_drift import DataDriftDetector, DataDriftResult

N_NUMERIC, N_CATEGORICAL, WINDOW = 15, 5, 1000
SHIFTED = ("n0", "n5")
SWAPPED = "c0"
ALPHA = 0.01
POOLED = 4
"""Calibrated mode's default ``pooled_windows``."""


def _numeric(rng: np.random.Generator, i: int, n: int) -> tuple[np.ndarray, float]:
    """Column ``i``'s values and its true standard deviation."""
    family = i % 5
    if family == 0:
        return rng.normal(0.0, 1.0, n), 1.0
    if family == 1:
        return rng.lognormal(0.0, 0.5, n), math.sqrt((math.exp(0.25) - 1) * math.exp(0.25))
    if family == 2:
        return rng.standard_t(5, n), math.sqrt(5 / 3)
    if family == 3:
        return rng.uniform(0.0, 1.0, n), math.sqrt(1 / 12)
    return rng.gamma(2.0, 1.0, n), math.sqrt(2.0)


def _category_probabilities(j: int, swap: bool) -> np.ndarray:
    weights = 1.0 / np.arange(1, 4 + j)
    weights /= weights.sum()
    if swap:
        weights[[0, 1]] = weights[[1, 0]]
    return weights


def make_table(rng: np.random.Generator, n: int, shift: float = 0.0, swap: bool = False) -> FeatureTable:
    kinds: dict[str, FeatureKind] = {}
    columns: dict[str, np.ndarray] = {}
    for i in range(N_NUMERIC):
        name = f"n{i}"
        values, sd = _numeric(rng, i, n)
        kinds[name], columns[name] = "numerical", values + (shift * sd if name in SHIFTED else 0.0)
    for j in range(N_CATEGORICAL):
        name = f"c{j}"
        probabilities = _category_probabilities(j, swap and name == SWAPPED)
        labels = np.array([f"v{k}" for k in range(len(probabilities))], dtype=object)
        kinds[name], columns[name] = "categorical", rng.choice(labels, n, p=probabilities)
    return FeatureTable(kinds, columns, n)


@dataclass
class Tally:
    windows: int = 0
    any_flag: int = 0
    dataset: int = 0
    target_flags: int = 0
    target_checks: int = 0
    delays: list[int] | None = None

    def add(self, result: DataDriftResult, targets: tuple[str, ...]) -> bool:
        flagged = {d.feature for d in result.features if d.drifted}
        self.windows += 1
        self.any_flag += bool(flagged)
        self.dataset += result.drifted
        hit = [t in flagged for t in targets]
        self.target_flags += sum(hit)
        self.target_checks += len(hit)
        return any(hit)


Evaluator = Callable[[FeatureTable, FeatureTable], Callable[[FeatureTable], DataDriftResult]]


@dataclass(frozen=True)
class Mode:
    name: str
    prepare: Evaluator
    alpha: float = ALPHA
    """Family-wise alpha the ideal test is computed at."""


def driftline(mode: str, pooled_windows: int = POOLED, alpha: float = ALPHA) -> Evaluator:
    def prepare(reference: FeatureTable, _: FeatureTable) -> Callable[[FeatureTable], DataDriftResult]:
        detector = DataDriftDetector(
            mode=mode,  # type: ignore[arg-type]
            alpha=alpha,
            pooled_windows=pooled_windows,
        )
        detector.fit(reference)
        return detector.evaluate

    return prepare


def evidently_preset(reference: FeatureTable, _: FeatureTable) -> Callable[[FeatureTable], DataDriftResult]:
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    from detectors.data_drift import FeatureDrift
    from exporters.evidently_preset import data_definition

    definition = data_definition(reference.kinds)
    ref_data = Dataset.from_pandas(pd.DataFrame(dict(reference.columns)), data_definition=definition)

    def evaluate(window: FeatureTable) -> DataDriftResult:
        current = Dataset.from_pandas(pd.DataFrame(dict(window.columns)), data_definition=definition)
        snapshot = Report([DataDriftPreset()]).run(current, ref_data)
        drifts, share = [], 0.0
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if config["type"].endswith("DriftedColumnsCount"):
                share = float(metric["value"]["share"])
            elif config["type"].endswith("ValueDrift"):
                value, threshold = float(metric["value"]), float(config["threshold"])
                p_value = "p_value" in config["method"]
                drifted = value < threshold if p_value else value >= threshold
                drifts.append(
                    FeatureDrift(config["column"], config["method"], value, threshold, drifted, drifted)
                )
        return DataDriftResult(tuple(drifts), share, share >= 0.5, share >= 0.5)

    return evaluate


def run(
    prepare: Evaluator,
    n_reference: int,
    windows: int,
    stream: int,
    seed: int,
    shift: float = 0.0,
    swap: bool = False,
) -> Tally:
    rng = np.random.default_rng(seed)
    tally = Tally(delays=[])
    targets = (SWAPPED,) if swap else SHIFTED if shift else ()
    done = 0
    while done < windows:
        reference = make_table(rng, n_reference)
        evaluate = prepare(reference, reference)
        first: int | None = None
        for k in range(min(stream, windows - done)):
            if tally.add(evaluate(make_table(rng, WINDOW, shift, swap)), targets) and first is None:
                first = k + 1
            done += 1
        assert tally.delays is not None
        tally.delays.append(first if first is not None else stream + 1)
    return tally


def ideal_rate(shift: float, n_reference: int, alpha: float, n_tests: int, rows: int = WINDOW) -> float:
    """Power of a two-sided z-test on the mean of ``rows`` rows at level alpha / n_tests
    (known variance)."""
    critical = -special.ndtri(alpha / n_tests / 2)
    z = shift / math.sqrt(1 / rows + 1 / n_reference)
    return float(special.ndtr(z - critical) + special.ndtr(-z - critical))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--windows", type=int, help="no-drift windows per Driftline mode (full 1000)")
    parser.add_argument("--evidently-windows", type=int, help="no-drift windows for the preset (full 40)")
    parser.add_argument("--shift-windows", type=int, help="windows per shift scenario (full 200)")
    parser.add_argument("--stream", type=int, default=20, help="windows per reference draw")
    args, chosen = harness.parse(
        parser,
        quick={"windows": 50, "evidently_windows": 2, "shift_windows": 10},
        full={"windows": 1000, "evidently_windows": 40, "shift_windows": 200},
    )
    run_record = harness.BenchRun("false_alarms", args, {**chosen, "stream": args.stream})
    base = [
        Mode("driftline evidently mode", driftline("evidently")),
        Mode("driftline calibrated, one window", driftline("calibrated", pooled_windows=1)),
        Mode(f"driftline calibrated (default, {POOLED} pooled windows)", driftline("calibrated")),
    ]
    for n_reference in (50_000, 1_000):
        started = time.perf_counter()
        print(f"\n## reference {n_reference:,} rows, windows {WINDOW:,} rows, 20 features")
        print("\n| detector | no-drift windows | any feature flagged (FWER) | dataset drift flagged |")
        print("| --- | ---: | ---: | ---: |")
        preset = run(evidently_preset, n_reference, args.evidently_windows, args.stream, seed=1)
        rows = [("evidently DataDriftPreset", preset)]
        rows += [(m.name, run(m.prepare, n_reference, args.windows, args.stream, seed=1)) for m in base]
        evidently_fwer = round(rows[1][1].any_flag / rows[1][1].windows, 3)
        matched = Mode(
            f"driftline calibrated, alpha {evidently_fwer} (evidently mode's FWER)",
            driftline("calibrated", alpha=evidently_fwer),
            evidently_fwer,
        )
        rows.append((matched.name, run(matched.prepare, n_reference, args.windows, args.stream, seed=1)))
        modes = [*base, matched]
        rates = {}
        for name, tally in rows:
            fwer, dataset = tally.any_flag / tally.windows, tally.dataset / tally.windows
            rates[name] = {"windows": tally.windows, "fwer": fwer, "dataset_drift": dataset}
            print(f"| {name} | {tally.windows} | {fwer:.3f} | {dataset:.3f} |")
        run_record.figure(f"no_drift_reference_{n_reference}", rates)
        print(
            "\n| shift | detector | shifted feature flagged | mean windows to first flag "
            f"| ideal z-test, one window | ideal z-test, {POOLED} windows |"
        )
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        features = N_NUMERIC + N_CATEGORICAL
        detection: dict[str, dict[str, float]] = {}
        for shift in (0.1, 0.25, 0.5, 1.0):
            for mode in modes:
                ideal = ideal_rate(shift, n_reference, mode.alpha, features)
                pooled = ideal_rate(shift, n_reference, mode.alpha, 2 * features, POOLED * WINDOW)
                tally = run(mode.prepare, n_reference, args.shift_windows, args.stream, seed=2, shift=shift)
                assert tally.delays is not None
                rate = tally.target_flags / tally.target_checks
                detection.setdefault(f"{shift} sd", {})[mode.name] = rate
                print(
                    f"| {shift} sd | {mode.name} | {rate:.3f} | {np.mean(tally.delays):.2f} "
                    f"| {ideal:.3f} | {pooled:.3f} |"
                )
        for mode in modes:
            tally = run(mode.prepare, n_reference, args.shift_windows, args.stream, seed=3, swap=True)
            assert tally.delays is not None
            rate = tally.target_flags / tally.target_checks
            print(f"| category swap | {mode.name} | {rate:.3f} | {np.mean(tally.delays):.2f} | | |")
        print(f"\n({time.perf_counter() - started:.0f} s)")
        run_record.figure(f"shifted_feature_flagged_reference_{n_reference}", detection)
        calibrated = base[2].name
        run_record.compare(
            f"false alarms (FWER), {calibrated}, reference {n_reference:,}",
            rates[calibrated]["fwer"],
            rates["evidently DataDriftPreset"]["fwer"],
            "evidently DataDriftPreset",
            "windows flagged",
        )
        run_record.compare(
            f"0.1 sd shift flagged, {calibrated}, reference {n_reference:,}",
            detection["0.1 sd"][calibrated],
            detection["0.1 sd"][base[0].name],
            base[0].name,
            "windows flagged",
        )
    run_record.write()


if __name__ == "__main__":
    main()
