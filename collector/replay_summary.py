"""What a replay did, per model version, and why it may have given fewer windows than expected.

Built from the pipeline once the file is done: the input counts, per version
the reference state, the windows evaluated, closed by age and skipped (with
the median gap between events, so a sparse history is explained), per model
the label outcomes; and warnings naming the key to change when most windows
were skipped or most labels expired.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from collector.model_state import ModelVersionState
from collector.pipeline import Pipeline, PipelineCounts, VersionKey
from exporters.store import MetricStore

LABEL_OUTCOMES = ("joined", "expired", "unmatched")


@dataclass(frozen=True)
class VersionSummary:
    """One model version at the end of a replay."""

    reference: str
    """``collecting N of M``, ``registered <id>`` or ``automatic <id> (complete)``."""
    windows: int
    drift_windows: int
    closed_by_age: int
    skipped: int
    """Closed by age with fewer than ``min_events`` predictions: not evaluated."""
    trailing: int
    median_gap_seconds: float | None
    max_seconds: float
    min_events: int


@dataclass(frozen=True)
class ReplaySummary:
    """What a replay did: input counts, each version, label outcomes per model, warnings."""

    counts: PipelineCounts
    versions: dict[VersionKey, VersionSummary]
    labels: dict[str, dict[str, int]]
    warnings: tuple[str, ...]
    exposition: str
    window_rows: int = 0
    """Rows written to ``--windows-out`` (0 without it)."""
    notes: tuple[str, ...] = ()
    """How replay's time rules differ from the configuration's (see ``replay.for_replay``)."""


def summarize(
    pipeline: Pipeline, trailing: dict[VersionKey, int], exposition: str, window_rows: int
) -> ReplaySummary:
    """The summary of a finished replay through ``pipeline``."""
    versions = {
        key: _version(state, pipeline.store, trailing.get(key, 0)) for key, state in pipeline.states.items()
    }
    labels = {
        model: {
            o: _count(pipeline.store, "driftline_labels_total", model=model, outcome=o)
            for o in LABEL_OUTCOMES
        }
        for model in sorted(pipeline.joins)
    }
    warnings = [w for key, v in sorted(versions.items()) if (w := _window_warning(key, v, pipeline))]
    warnings += [w for _, state in sorted(pipeline.states.items()) if (w := _threshold_warning(state))]
    warnings += [w for model, outcomes in labels.items() if (w := _label_warning(model, outcomes))]
    return ReplaySummary(pipeline.counts, versions, labels, tuple(warnings), exposition, window_rows)


def _version(state: ModelVersionState, store: MetricStore, trailing: int) -> VersionSummary:
    return VersionSummary(
        reference=_reference_state(state),
        windows=state.windows_evaluated,
        drift_windows=_count(store, "driftline_dataset_drift_windows_total", **state.labels),
        closed_by_age=state.windows_closed_by_age,
        skipped=state.windows_too_small,
        trailing=trailing,
        median_gap_seconds=state.gaps.median(),
        max_seconds=state.window_config.max_seconds,
        min_events=state.window_config.min_events,
    )


def _reference_state(state: ModelVersionState) -> str:
    reference = state.reference
    if reference is None:
        collected = state.pending_reference_events()
        return f"collecting {collected} of {state.auto_events}"
    if reference.automatic:
        return f"automatic {reference.reference_id} (complete)"
    return f"registered {reference.reference_id}"


def _window_warning(key: VersionKey, version: VersionSummary, pipeline: Pipeline) -> str | None:
    """Most windows closed by age too small to evaluate: say how far apart events are and what to set."""
    if version.skipped == 0 or version.skipped <= version.windows:
        return None
    model, model_version = key
    where = f"models.{model}.window" if pipeline.config.model(model).window else "defaults.window"
    gap = version.median_gap_seconds
    spacing = f"events are {gap:.3g} s apart (median)" if gap is not None else "events are far apart"
    needed = f"; about {gap * version.min_events:,.0f} s holds {version.min_events}" if gap else ""
    return (
        f"{model}/{model_version}: {version.skipped} of {version.skipped + version.windows} windows closed "
        f"by age with fewer than {version.min_events} predictions and were not evaluated: {spacing}, "
        f"windows close after {version.max_seconds:g} s. Raise {where}.max_seconds{needed}, "
        f"or lower {where}.min_events."
    )


def _threshold_warning(state: ModelVersionState) -> str | None:
    """Label windows evaluated with no realized performance threshold: say why (the 10% rules apply)."""
    health = state.health
    if health.label_windows_evaluated == 0 or "realized" in health.thresholds:
        return None
    name = f"{state.model}/{state.model_version}"
    windows = f"{health.label_windows_evaluated} label windows"
    reference = state.reference
    if reference is not None and not reference.automatic:
        why = "its reference file has no label column"
    else:
        joined = health.status()["reference_labels_joined"]
        why = (
            f"{joined} of the {health.reference_labels_needed} labels of the reference period joined "
            f"(models.{state.model}.reference_labels)"
        )
    rules = "only the fixed 10% rules apply"
    return f"{name}: {windows} evaluated without a performance threshold: {why}; {rules}"


def _label_warning(model: str, outcomes: dict[str, int]) -> str | None:
    """Most labels expired before their prediction's label came: name the key."""
    total = sum(outcomes.values())
    if total == 0 or outcomes["expired"] * 2 <= total:
        return None
    return (
        f"{model}: {outcomes['expired']} of {total} labels expired: they came more than "
        "labels.max_age_seconds after their predictions (or the predictions were evicted past "
        "labels.max_entries). Raise labels.max_age_seconds (and labels.max_entries) to join them."
    )


def _count(store: MetricStore, name: str, **labels: str) -> int:
    value = store.get(name, labels)
    return int(value) if isinstance(value, float) else 0


def print_summary(summary: ReplaySummary, console: Console) -> None:
    """The replay summary as tables, then the warnings."""
    counts = summary.counts
    totals = Table(title="Input")
    totals.add_column("outcome")
    totals.add_column("events", justify="right")
    for kind, count in counts.accepted.items():
        totals.add_row(f"accepted {kind}", str(count))
    for reason, count in sorted(counts.rejected.items()):
        totals.add_row(f"rejected {reason}", str(count))
    totals.add_row("total", str(counts.total))
    console.print(totals)
    versions = Table(title="Model versions")
    columns = (
        "model",
        "model_version",
        "reference",
        "windows",
        "dataset drift windows",
        "closed by age",
        "skipped (< min_events)",
        "median gap (s)",
        "trailing events (not evaluated)",
    )
    for column in columns:
        versions.add_column(column)
    for (model, model_version), v in sorted(summary.versions.items()):
        gap = "-" if v.median_gap_seconds is None else f"{v.median_gap_seconds:.3g}"
        versions.add_row(
            model,
            model_version,
            v.reference,
            str(v.windows),
            str(v.drift_windows),
            str(v.closed_by_age),
            str(v.skipped),
            gap,
            str(v.trailing),
        )
    console.print(versions)
    if summary.labels:
        labels = Table(title="Labels")
        for column in ("model", *LABEL_OUTCOMES):
            labels.add_column(column)
        for model, outcomes in summary.labels.items():
            labels.add_row(model, *(str(outcomes[o]) for o in LABEL_OUTCOMES))
        console.print(labels)
    for note in summary.notes:
        console.print(f"replay: {note}", highlight=False)
    for warning in summary.warnings:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False)
