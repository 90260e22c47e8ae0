"""Prometheus config and alert rules, checked and unit-tested with promtool; Alertmanager
config checked and its routing tested with amtool (Debian's prometheus 2.42 and
prometheus-alertmanager 0.25)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_binary

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "driftline.rules.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
RUNBOOK = ROOT / "docs" / "runbook.md"
MODEL_ALERTS = (
    "DriftlineDatasetDrift",
    "DriftlineFeatureDrift",
    "DriftlineMultivariateDrift",
    "DriftlineEmbeddingDrift",
    "DriftlinePredictionDrift",
    "DriftlinePerformanceDrop",
    "DriftlineEstimatedPerformanceDrop",
    "DriftlinePerformanceThresholdCrossed",
    "DriftlineEstimatedPerformanceThresholdCrossed",
    "DriftlineConceptDrift",
    "DriftlineDataQuality",
    "DriftlineChallengerWorse",
    "DriftlineHighLatency",
    "DriftlineServingErrors",
    "DriftlineNoTraffic",
)
NOT_MODEL_ALERTS = (
    "DriftlineConsumerLag",
    "DriftlineStateNotSaved",
    "DriftlineEventsRejected",
    "DriftlineCollectorDown",
    "DriftlineKafkaUnreachable",
    "DriftlineCommitsFailing",
)
ALERTS = MODEL_ALERTS + NOT_MODEL_ALERTS  # in the rules file's order
JOIN = "* on(model, model_version) group_left(data_version) driftline_model_info"


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


def _rules() -> list[dict[str, object]]:
    """The alerting rules (recording rules, ``record:``, feed them)."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_check_config_accepts_the_prometheus_config() -> None:
    result = _run(require_binary("promtool"), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 30 rules found" in result.stdout + result.stderr


def test_promtool_check_rules_accepts_the_rules() -> None:
    result = _run(require_binary("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules_passes() -> None:
    result = _run(require_binary("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def _test_changed_rules(tmp_path: Path, old: str, new: str, tests: str) -> str:
    """Run one promtool test file against a copy of the rules with ``old`` replaced by ``new``;
    the test file must fail, and its output is returned."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    changed = RULES.read_text().replace(old, new)
    assert changed != RULES.read_text()
    (tmp_path / "rules" / RULES.name).write_text(changed)
    test_file = tmp_path / "tests" / tests
    test_file.write_text((PROMETHEUS_DIR / "tests" / tests).read_text())
    result = _run(require_binary("promtool"), "test", "rules", str(test_file))
    assert result.returncode != 0
    return result.stdout + result.stderr


def test_the_rule_tests_fail_when_a_threshold_changes(tmp_path: Path) -> None:
    """The unit tests can fail: a copy with a looser error threshold must break them."""
    assert "DriftlineServingErrors" in _test_changed_rules(tmp_path, "> 0.05", "> 0.2", "serving.test.yml")


def test_the_challenger_rule_tests_fail_at_another_alpha(tmp_path: Path) -> None:
    """The two-proportion test's threshold is what the unit tests pin: a looser one breaks them."""
    output = _test_changed_rules(tmp_path, "< -2.326)", "< -0.5)", "versions.test.yml")
    assert 'model="fraud"' in output  # z = -1.26 now fires


def test_the_challenger_error_rule_tests_fail_at_another_alpha(tmp_path: Path) -> None:
    """The Welch test's threshold is pinned too: a looser one fires for the alike regressor."""
    output = _test_changed_rules(tmp_path, "> 2.326)", "> 0.1)", "versions.test.yml")
    assert 'model="demand"' in output  # z = 0.64 at 30m, above 0.1 from the first minute: fires


def test_the_challenger_error_rule_tests_fail_on_the_variance(tmp_path: Path) -> None:
    """The recorded z is pinned to its value: the population variance (dividing by n) breaks it."""
    output = _test_changed_rules(
        tmp_path, "(driftline:regression_scored:increase1h - 1)", "driftline:regression_scored:increase1h",
        "versions.test.yml",
    )
    assert "driftline:challenger_mae_z:1h" in output


def test_recording_rules_are_named_driftline_colon() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    records = [rule["record"] for group in groups for rule in group["rules"] if "record" in rule]
    assert records == [
        "driftline:predictions_scored:increase1h",
        "driftline:predictions_correct:increase1h",
        "driftline:champion_predictions_scored:increase1h",
        "driftline:champion_predictions_correct:increase1h",
        "driftline:challenger_accuracy_z:1h",
        "driftline:regression_scored:increase1h",
        "driftline:regression_mae:1h",
        "driftline:regression_mae_variance:1h",
        "driftline:challenger_mae_z:1h",
    ]


def test_the_rules_are_exactly_the_driftline_alerts() -> None:
    assert tuple(rule["alert"] for rule in _rules()) == ALERTS


@pytest.mark.parametrize("alert", ALERTS)
def test_every_rule_is_unit_tested_firing_and_not_firing(alert: str) -> None:
    firing, silent = 0, 0
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check["alertname"] == alert:
                    firing += bool(check["exp_alerts"])
                    silent += not check["exp_alerts"]
    assert firing >= 1 and silent >= 1, f"{alert}: {firing} firing and {silent} silent checks"


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: str(rule["alert"]))
def test_every_rule_has_severity_summary_runbook_and_realistic_for(rule: dict[str, object]) -> None:
    labels, annotations = rule["labels"], rule["annotations"]
    assert isinstance(labels, dict) and isinstance(annotations, dict)
    assert labels["severity"] in {"critical", "warning", "info"}
    assert annotations["summary"]
    anchor = str(rule["alert"]).lower()
    assert annotations["runbook_url"] == f"docs/runbook.md#{anchor}"
    assert f"\n## {rule['alert']}\n" in RUNBOOK.read_text(), f"no runbook section for {anchor}"
    minutes = {"2m": 2, "5m": 5, "10m": 10, "15m": 15, "30m": 30}
    assert minutes[str(rule["for"])] >= 2
    if rule["alert"] not in NOT_MODEL_ALERTS:
        assert JOIN in " ".join(str(rule["expr"]).split())
        assert str(annotations["report_url"]).endswith(
            "/reports/{{ $labels.model }}/{{ $labels.model_version }}/latest"
        )
        assert "{{ $labels.data_version }}" in str(annotations["summary"])


def test_amtool_check_config_accepts_the_alertmanager_config() -> None:
    result = _run(require_binary("amtool"), "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 inhibit rules" in result.stdout


MODEL_LABELS = ("model=credit-risk", "model_version=3")


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (("alertname=DriftlineDatasetDrift", "severity=warning", *MODEL_LABELS), "driftline-models"),
        (("alertname=DriftlineFeatureDrift", "severity=info", *MODEL_LABELS), "driftline-models"),
        (("alertname=DriftlinePerformanceDrop", "severity=critical", *MODEL_LABELS), "driftline-oncall"),
        (("alertname=DriftlineCollectorDown", "severity=critical"), "driftline-platform"),
        (("alertname=DriftlineConsumerLag", "severity=warning"), "driftline-platform"),
        (("alertname=DriftlineKafkaUnreachable", "severity=critical"), "driftline-platform"),
        (("alertname=DriftlineCommitsFailing", "severity=warning"), "driftline-platform"),
        (("alertname=SomethingElse", "severity=warning"), "driftline-default"),
    ],
)
def test_alertmanager_routes_by_severity_and_model(labels: tuple[str, ...], receiver: str) -> None:
    result = _run(
        require_binary("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver
