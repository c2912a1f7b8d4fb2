"""bench.suite_tiers: pytest's summary read back, and one real (tiny) pytest run measured."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.suite_tiers import parse_summary, reference_seconds, run_tier, shown, tier_command


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (
            "....\nSKIPPED [1] x.py:3: why\n853 passed, 1 skipped in 338.42s (0:05:38)\n",
            {"passed": 853, "failed": 0, "skipped": 1, "errors": 0, "pytest_s": 338.42},
        ),
        (
            "===== 2 failed, 5 passed, 1 error, 3 warnings in 12.50s =====",
            {"passed": 5, "failed": 2, "skipped": 0, "errors": 1, "pytest_s": 12.5},
        ),
        ("no tests ran in 0.01s\n", {}),
        ("ERROR: usage: python -m pytest [options]\n", {}),
    ],
)
def test_the_summary_line_gives_the_counts_and_seconds(output: str, expected: dict):
    parsed = parse_summary(output)
    assert {k: v for k, v in parsed.items() if k != "pytest_summary"} == expected
    if expected:  # the line itself, without pytest's rules
        line = parsed["pytest_summary"]
        assert line.endswith(output.strip().strip("=").strip().splitlines()[-1])
        assert "=" not in line


def test_a_tier_command_is_the_ci_command_as_a_person_types_it():
    text = shown(tier_command("quick"))
    assert text.removeprefix("xvfb-run -a ") == 'python -m pytest -q -m "not slow and not browser"'
    assert tier_command("everything")[-4:] == [sys.executable, "-m", "pytest", "-q"]


def test_a_small_run_is_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "test_small.py").write_text(
        "import pytest\n\ndef test_ok():\n    assert sum(range(10**6)) > 0\n\n"
        "def test_later():\n    pytest.skip('not here')\n"
    )
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # this run needs none of them
    result = run_tier([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], tmp_path)
    assert result["exit_code"] == 0 and (result["passed"], result["skipped"]) == (1, 1)
    assert 0 < result["pytest_s"] <= result["wall_s"]
    assert result["peak_rss_kb"] > 10_000  # a Python process running pytest: tens of MB
    failing = tmp_path / "test_small.py"
    failing.write_text("def test_no():\n    assert False\n")
    result = run_tier([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], tmp_path)
    assert result["exit_code"] == 1 and result["failed"] == 1
    assert "1 failed" in result["output_tail"][-1]


def test_the_reference_loop_times_this_machine():
    assert 0 < reference_seconds(1) < 60
