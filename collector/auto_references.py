"""Completed automatic references, kept so a restarted or rebalanced collector compares with the same data.

Without a registered reference, a model version's first ``auto_events``
predictions become its reference. Once complete it is written to the state
store under ``<prefix>reference/<model>/<model_version>``: the predictions
themselves (in their wire form) and the content-hash id. Every later
collector of that version (after a restart, or the partition's new owner in a
rebalance) loads it instead of collecting a new reference from whatever
traffic comes next, which may already have drifted.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from collector.references import Reference, automatic_reference
from collector.state_codec import StateFormatError, pack, unpack
from collector.state_store import StateStore
from collector.windows import Window
from detectors.base import FeatureKind

log = logging.getLogger(__name__)

KIND = "automatic_reference"


class AutomaticReferences:
    """Saves and loads the automatic references of model versions in a :class:`StateStore`."""

    def __init__(self, store: StateStore, prefix: str = "") -> None:
        self.store = store
        self.prefix = prefix

    def save(self, model: str, model_version: str, reference: Reference, events: Window) -> None:
        """Keep a completed automatic reference and the predictions it was built from."""
        body = {"reference_id": reference.reference_id, "data_version": reference.data_version}
        self.store.put(self._key(model, model_version), pack(KIND, {**body, "events": events.to_dict()}))

    def load(
        self, model: str, model_version: str, overrides: Mapping[str, FeatureKind], task: str | None
    ) -> tuple[Reference, set[str]] | None:
        """The stored reference of a version and its predictions' ids, or None (unknown or unreadable)."""
        raw = self.store.get(self._key(model, model_version))
        if raw is None:
            return None
        try:
            body = unpack(KIND, raw)
            events = Window.from_dict(body["events"])
            reference = automatic_reference(events, overrides, task, str(body["data_version"]))
        except (StateFormatError, KeyError, TypeError, ValueError) as exc:
            log.warning("%s/%s: stored automatic reference unreadable, collecting a new one: %s",
                        model, model_version, exc)
            return None
        if reference.reference_id != body["reference_id"]:
            log.warning(
                "%s/%s: the stored automatic reference %s reads as %s now (feature kinds or task changed)",
                model, model_version, body["reference_id"], reference.reference_id,
            )
        return reference, set(events.event_ids())

    def _key(self, model: str, model_version: str) -> str:
        return f"{self.prefix}reference/{model}/{model_version}"
