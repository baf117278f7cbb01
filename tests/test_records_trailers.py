"""The trailer and MLflow-tag contracts (`mlgate.records`): whatever the writer accepts parses back to
the same values, git reads the same trailers as mlgate's parser, and the parser refuses what the
writer never produces. Property tests over arbitrary text (control characters, newlines, colons,
unicode) for every field, many through the pure writer/parser and a sample through real
`git commit` + `git log`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from mlgate.errors import BadInputError
from mlgate.records.tags import VersionTags, read_tags
from mlgate.records.trailers import (
    ChangeKind,
    Trailers,
    commit_message,
    make_trailers,
    parse_message,
    with_approvals,
)
from mlgate.records.values import canonical_version, check_text

BASE = {"model": "credit_risk", "model_version": "3", "environment": "prod", "change": "promote"}
TEXT_FIELDS = [
    name
    for name, f in Trailers.model_fields.items()
    if name not in ("change", "canary_weight", "approved_by")
]
# Arbitrary text, weighted towards what breaks records: line breaks, controls, colons, spaces.
_CHARS = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(["\n", "\r", "\t", "\x00", "\x1b", "\u2028", "\u0085", ":", " ", "-"]),
)
NASTY = st.lists(
    st.one_of(
        st.text(alphabet=_CHARS, max_size=12),
        st.sampled_from(["Change: rollback", "Model-Version: 9", "Approved-by: eve", "\n\n"]),
    ),
    max_size=4,
).map("".join)


def _write(field: str, value: str) -> tuple[Trailers, str] | None:
    """(trailers, message) with `field` set to `value`, or None when the writer refuses it."""
    try:
        trailers = make_trailers(**{**BASE, field: value})
        return trailers, commit_message("Promote credit_risk 3 to prod", trailers)
    except BadInputError as exc:
        assert Trailers.model_fields[field].alias in str(exc) or field in str(exc)
        return None


@pytest.mark.parametrize("field", TEXT_FIELDS)
@hsettings(max_examples=150, deadline=None)
@given(value=NASTY)
def test_any_value_round_trips_or_is_refused(field: str, value: str) -> None:
    written = _write(field, value)
    if written is None:
        return
    trailers, msg = written
    parsed = parse_message(msg, "test")
    assert parsed == trailers
    got = getattr(parsed, field)
    if value == "":  # an optional trailer left empty is not written at all
        assert got is None and Trailers.model_fields[field].alias not in msg
        return
    # the value itself comes back (a version number in its one spelling)
    want = canonical_version(value) if field in ("model_version", "champion") else value
    assert got == want
    assert "\n" not in got and got == got.strip()


@hsettings(max_examples=300, deadline=None)
@given(subject=NASTY, body=st.lists(NASTY, max_size=4))
def test_subject_and_body_never_change_the_trailers(subject: str, body: list[str]) -> None:
    trailers = make_trailers(**BASE)
    try:
        msg = commit_message(subject, trailers, body)
    except BadInputError as exc:
        assert "commit subject" in str(exc) or "commit body" in str(exc)
        return
    assert parse_message(msg, "test") == trailers


@hsettings(max_examples=300, deadline=None)
@given(names=st.lists(NASTY, min_size=1, max_size=3))
def test_approver_names_round_trip_or_are_refused_naming_the_option(names: list[str]) -> None:
    msg = commit_message("Promote credit_risk 3 to prod", make_trailers(**BASE))
    try:
        merged = with_approvals(msg, names, "test", "--approver")
    except BadInputError as exc:
        assert str(exc).startswith("--approver")
        return
    parsed = parse_message(merged, "test")
    assert parsed is not None
    assert parsed.approved_by == tuple(names)
    assert parsed.model_dump(exclude={"approved_by"}) == make_trailers(**BASE).model_dump(
        exclude={"approved_by"}
    )


def _git(repo: Path, *args: str, input: str | None = None) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        input=input,
        capture_output=True,
        text=True,
        check=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.org",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.org",
            "HOME": str(repo),
            "PATH": "/usr/bin:/bin",
        },
    ).stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = tmp_path_factory.mktemp("trailers-git")
    _git(r, "init", "-q")
    return r


@hsettings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(TEXT_FIELDS),
    value=NASTY,
    body=st.lists(NASTY, max_size=3),
    approver=NASTY,
)
def test_git_reads_the_trailers_mlgate_wrote(
    repo: Path, field: str, value: str, body: list[str], approver: str
) -> None:
    """Through real git: the message git stores parses back to what was written, and git's
    own trailer reading (`%(trailers)`) sees exactly mlgate's trailers, nothing from the body."""
    try:
        trailers = make_trailers(**{**BASE, field: value})
        msg = commit_message("Promote credit_risk 3 to prod", trailers, body)
        msg = with_approvals(msg, [approver], "test", "--approver")
    except BadInputError:
        return
    _git(repo, "commit", "-q", "--allow-empty", "-F", "-", input=msg)
    stored = _git(repo, "log", "-1", "--format=%B")
    parsed = parse_message(stored, "HEAD")
    assert parsed is not None and parsed.model_dump(exclude={"approved_by"}) == trailers.model_dump(
        exclude={"approved_by"}
    )
    assert parsed.approved_by == (approver,)
    git_view = _git(repo, "log", "-1", "--format=%(trailers:only,unfold)").strip("\n")
    assert git_view.split("\n") == [f"{k}: {v}" for k, v in parsed.pairs()]


def _msg(*trailer_lines: str, body: str = "") -> str:
    return (
        "Promote credit_risk 3 to prod\n\n"
        + (body + "\n\n" if body else "")
        + "\n".join(trailer_lines)
        + "\n"
    )


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        (
            ["Model: m", "Environment: prod", "Change: promote", "Change: rollback"],
            "more than once",
        ),
        (
            [
                "Model: m",
                "Environment: prod",
                "Change: promote",
                "Model-Version: 9",
                "Model-Version: 3",
            ],
            "more than once",
        ),
        (
            ["Model: m", "Environment: prod", "Change: promote", "Signed-off-by: x"],
            "not an mlgate trailer",
        ),
        (
            ["Model: m", "Environment: prod", "Change: promote", " continued"],
            "not an mlgate trailer",
        ),
        (["Model: m", "Environment: prod", "Change: demote"], "Change"),
        (
            ["Model: m", "Environment: prod", "Change: promote", "Model-Version: 002"],
            "Model-Version",
        ),
        (
            ["Model: m", "Environment: prod", "Change: promote", "Model-Version:  3"],
            "Model-Version",
        ),
        (
            ["Model: m", "Environment: prod", "Change: promote", "Canary-Weight: 010"],
            "Canary-Weight",
        ),
        (["Model: m", "Environment: prod", "Change: promote", "Approved-by: "], "Approved-by"),
        (["Model: m", "Change: promote"], "Environment"),
    ],
)
def test_parser_refuses_what_the_writer_never_writes(lines: list[str], why: str) -> None:
    with pytest.raises(BadInputError, match=why):
        parse_message(_msg(*lines), "commit abc")


def test_trailers_are_read_from_the_last_paragraph_only() -> None:
    """A body paragraph that looks like trailers is not the trailer block; a commit whose last
    paragraph has no Change line is not an mlgate commit."""
    msg = _msg(
        "Model: m", "Environment: dev", "Change: promote", body="Change: rollback\nModel-Version: 9"
    )
    parsed = parse_message(msg, "c")
    assert (
        parsed is not None and parsed.change is ChangeKind.PROMOTE and parsed.model_version is None
    )
    assert parse_message("Seed the repository\n\nSigned-off-by: someone\n", "c") is None
    assert parse_message("Seed the repository\n", "c") is None


def test_writer_refuses_body_lines_that_read_as_trailers() -> None:
    with pytest.raises(BadInputError, match="commit body.*reads as a commit trailer"):
        commit_message("Abort canary", make_trailers(**BASE), ["Reason: x", "Change: rollback"])
    with pytest.raises(BadInputError, match="commit subject"):
        commit_message("Change: rollback", make_trailers(**BASE))


@pytest.mark.parametrize(
    ("value", "want"),
    [("3", "3"), ("002", "2"), ("0010", "10"), (7, "7")],
)
def test_canonical_versions(value: object, want: str) -> None:
    assert canonical_version(value) == want


@pytest.mark.parametrize(
    "value", ["", "0", "000", "+2", " 2", "2 ", "2.0", "-1", "٢", "²", "2\n", "1e3", True]
)
def test_non_versions_are_refused_naming_the_field(value: object) -> None:
    with pytest.raises(BadInputError, match="^--version: "):
        canonical_version(value)


@pytest.mark.parametrize(
    "value", ["a\nb", "a\rb", "x\x1b[2Kforged", " lead", "trail ", "a\u2028b", "a\u202eb", ""]
)
def test_unsafe_text_is_refused_naming_the_field(value: str) -> None:
    with pytest.raises(BadInputError, match="^--reason: "):
        check_text(value, "--reason")


TAG_FIELDS = list(VersionTags.model_fields)


@pytest.mark.parametrize("tag", TAG_FIELDS)
@hsettings(max_examples=60, deadline=None)
@given(value=NASTY)
def test_mlflow_tags_round_trip_or_are_refused_naming_tag_and_version(tag: str, value: str) -> None:
    """A tag's value as the model's author may set it: read back as itself, or refused."""
    try:
        parsed = read_tags({tag: value, "unrelated": "x\ny"}, "credit_risk", "3")
    except BadInputError as exc:
        assert str(exc).startswith(f"MLflow tag {tag} of credit_risk version 3: ")
        return
    assert getattr(parsed, tag) == value
    assert read_tags(parsed.to_tags(), "credit_risk", "3") == parsed
