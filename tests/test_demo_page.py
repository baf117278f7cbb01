"""The story's page (`mlgate.demo.page`) rendered from made-up records: valid HTML, nothing
fetched from elsewhere, every record's text escaped. No demo run: `render` is pure, so these
take milliseconds; tests/test_demo.py renders the real demo's page in Chromium.

The validator is HTML Tidy (Debian's `tidy`, installed by `make debs`); missing is a failure.
"""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mlgate.demo.page import GateEntry, MonitorEntry, PageData, TimelineEvent, render
from mlgate.gates.monitor import MonitorReport
from mlgate.gates.result import CanaryRun, GateReport, GateResult, GateStatus

ATTACK = '<script>alert("x")</script><img src=https://evil.example/x.png onerror=alert(1)>'


class _Refs(HTMLParser):
    """Every tag and every URL-bearing attribute of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "action", "srcset", "poster", "data", "xlink:href"):
                self.urls.append((tag, name, value or ""))


def external_references(html: str) -> list[str]:
    """What would make a browser fetch anything: scripts, stylesheets, frames, absolute or
    protocol-relative URLs, CSS url()/@import. Relative links to files beside the page are
    the page's intended links and allowed."""
    parser = _Refs()
    parser.feed(html)
    found = [t for t in parser.tags if t in ("script", "link", "iframe", "object", "embed")]
    for tag, name, value in parser.urls:
        v = value.strip().lower()
        if tag != "a" or v.startswith(("http:", "https:", "//", "javascript:", "data:", "file:")):
            found.append(f"<{tag} {name}={value}>")
    lowered = html.lower()
    found += [m for m in ("url(", "@import") if m in lowered]
    return found


def tidy_errors(path: Path) -> str:
    """HTML Tidy's errors and warnings on the file ('' when it is clean)."""
    tidy = shutil.which("tidy")
    assert tidy, "HTML Tidy is not installed: `make debs` (Debian package tidy)"
    proc = subprocess.run(
        [tidy, "-q", "-e", "--show-warnings", "yes", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return "" if proc.returncode == 0 else proc.stderr


def _gate(env: str, version: str, statuses: dict[str, GateStatus]) -> GateReport:
    overall = GateStatus.FAIL if GateStatus.FAIL in statuses.values() else GateStatus.PASS
    return GateReport(
        model="credit_risk",
        challenger=version,
        champion=None if version == "1" else "1",
        env=env,
        overall=overall,
        verdict=overall,
        gates=[GateResult(name=n, status=s, summary=f"{n}: {ATTACK}") for n, s in statuses.items()],
    )


def _page() -> PageData:
    t0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    events = [
        TimelineEvent(
            commit=f"{i:040x}",
            time=t0,
            model="credit_risk",
            env=env,
            change=kind,
            version=v,
            weight=w,
            author="mlgate",
            merged_by="pr-merge",
            approved_by=["model-risk-officer"],
            override_reason=ATTACK if i == 2 else None,
            subject=f"{kind} {ATTACK}",
        )  # fmt: skip
        for i, (env, kind, v, w) in enumerate(
            [
                ("dev", "promote", "1", None),
                ("stage", "promote", "1", None),
                ("prod", "promote", "1", None),
                ("prod", "promote", "2", 10),
                ("prod", "canary-set-weight", "2", 50),
                ("prod", "canary-promote", "2", None),
                ("prod", "rollback", "1", None),
                ("prod", "canary-abort", None, None),
            ]
        )  # fmt: skip
    ]
    canary = [
        GateEntry(
            path="../reports/canary/look",
            links={"report.html": f"../reports/canary/look{n}/report.html"},
            report=_gate("prod", "2", {"volume": s, "drift": GateStatus.PASS}).model_copy(
                update={
                    "kind": "canary-analysis",
                    "data": {"requests": 600 * n, "canary_requests": 300 * n},
                    "canary": CanaryRun(
                        start_commit="a" * 40, started="2026-11-30T10:00:00", weight=50, decision=d
                    ),  # fmt: skip
                }
            ),
        )
        for n, s, d in [(1, GateStatus.INCONCLUSIVE, "wait"), (2, GateStatus.PASS, "promote")]
    ]
    # the shadow's analysis before them: its `requests` is the sink it read, `paired` the count
    shadow = _gate("prod", "2", {"decision_flips": GateStatus.PASS}).model_copy(
        update={
            "kind": "shadow-analysis",
            "data": {"requests": "http://127.0.0.1:9/sink", "paired": 2278},
        }  # fmt: skip
    )
    canary.insert(0, GateEntry(path="../reports/canary/shadow", links={}, report=shadow))
    monitor = MonitorReport(
        model="credit_risk",
        version="1",
        env="prod",
        overall=GateStatus.FAIL,
        alerts=[f"drift: online_spend_share_30d PSI 0.41 {ATTACK}"],
        checks=[GateResult(name="drift", status=GateStatus.FAIL, summary="PSI 0.41")],
    )
    return PageData(
        generated=t0,
        workspace="/ws",
        timeline=events,
        gates=[
            GateEntry(
                path="../reports/gates/x",
                report=_gate(
                    env, "1", {"performance": GateStatus.PASS, "fairness": GateStatus.FAIL}
                ),
                links={
                    "report.html": "../reports/gates/x/report.html",
                    "evidently_drift.html": "../reports/gates/x/evidently_drift.html",
                },
            )
            for env in ("dev", "stage")
        ],  # fmt: skip
        monitor=[MonitorEntry(path="../reports/monitor/x", report=monitor)],
        canary=canary,
        lineage=[
            {
                "model": "credit_risk",
                "stable": {
                    "version": "1",
                    "traffic": 100,
                    "image": "127.0.0.1:5555/m@sha256:" + "0" * 64,
                    "entered": {
                        "change": "promote",
                        "commit": "b" * 40,
                        "author": ATTACK,
                        "approved_by": ["model-risk-officer"],
                        "merged_by": "pr-merge",
                        "gate_report": {"sha256": "c" * 64, "verified": True},
                    },
                    "mlflow": {"run_id": "r1", "data_fingerprint": "sha256:d"},
                },
            }
        ],  # fmt: skip
        model_cards={"credit_risk-v1": "../reports/model_cards/credit_risk-v1/model_card.html"},
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    html = render(_page())
    path = tmp_path_factory.mktemp("page") / "index.html"
    path.write_text(html, encoding="utf-8")
    return path, html


def test_the_page_is_valid_html(page: tuple[Path, str]) -> None:
    path, _html = page
    assert tidy_errors(path) == ""


def test_the_validator_sees_a_broken_page(tmp_path: Path) -> None:
    """The check above could not pass on anything: Tidy reports a table cell outside a row."""
    bad = tmp_path / "bad.html"
    bad.write_text(render(_page()).replace("<tbody><tr>", "<tbody><td>x</td><tr>", 1))
    assert tidy_errors(bad) != ""


def test_the_page_fetches_nothing_and_links_only_beside_itself(page: tuple[Path, str]) -> None:
    _path, html = page
    assert external_references(html) == []
    # ...and the detector sees what it must refuse
    assert external_references('<img src="https://x/y.png"><script src="a.js"></script>') == [
        "script",
        "<img src=https://x/y.png>",
        "<script src=a.js>",
    ]
    assert external_references('<a href="//cdn.example/x">x</a>') != []


def test_record_text_is_escaped_never_markup(page: tuple[Path, str]) -> None:
    """Commit subjects, override reasons, authors, gate summaries, alerts carry the attack:
    none of it becomes a tag or an attribute."""
    _path, html = page
    parser = _Refs()
    parser.feed(html)
    assert "script" not in parser.tags and "img" not in parser.tags
    assert "&lt;script&gt;" in html
    assert "evil.example" not in {u for _t, _n, u in parser.urls}


def test_the_page_has_every_part_of_the_story(page: tuple[Path, str]) -> None:
    _path, html = page
    for anchor in ('id="lineage"', 'id="timeline"', 'id="timeline-plot"', 'id="gates"',
                   'id="monitor"', 'id="canary"', 'id="canary-plot"', 'id="evidence"'):  # fmt: skip
        assert anchor in html, anchor
    assert html.count('class="gate-table"') == 2
    assert html.count('class="timeline-table"') == 3  # dev, stage, prod
    # every prod change is a row of prod's table, in order, with its canary weight
    prod = html.split('id="env-prod"', 1)[1].split("</table>", 1)[0]
    kinds = [
        "promote",
        "promote",
        "canary-set-weight",
        "canary-promote",
        "rollback",
        "canary-abort",
    ]
    positions = [prod.index(f">{k}</span>") for k in dict.fromkeys(kinds)]
    assert positions == sorted(positions)
    assert "50%" in prod and "model-risk-officer" in prod
    assert 'class="alert"' in html and "PSI 0.41" in html
    assert html.count("look 1") == 1 and "PROMOTE" in html and "WAIT" in html
    canary = html.split('class="canary-table"', 1)[1].split("</table>", 1)[0]
    assert ">shadow<" in canary and ">2278<" in canary  # the shadow's row counts its pairs
    assert "evidently_drift.html" in html and "model_card.html" in html
