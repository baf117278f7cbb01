"""A CycloneDX 1.5 SBOM of what an image installs, made from the hash-locked wheelhouse.

The wheelhouse lock is the exact list of distributions the image's venv receives (installed
with --require-hashes), so the SBOM is generated from it before the build: every component has
its PyPI package URL, the SHA-256 of the wheel installed and its licence (CycloneDX `licenses`:
the SPDX id, or the SPDX expression when it combines several), read by the same reader that
`make test`'s licence check uses (mlgate.packaging.licences). Its digest goes into the image's
labels, and the file itself into the image (/opt/mlgate/sbom.cdx.json). It is deterministic
(no timestamp; the serial number is derived from the content) so an unchanged version rebuilds
to the same SBOM digest. The base image's Debian packages are listed from its dpkg status, each
with the licence its machine-readable copyright file declares for `Files: *` (in Debian's own
short names, so as a licence name, not an SPDX id; NOASSERTION where the file is free-form).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from mlgate.packaging.wheelhouse import LockedWheel

SPEC_VERSION = "1.5"


def licenses(expression: str | None) -> list[dict[str, Any]]:
    """CycloneDX 1.5 `licenses` for an SPDX expression: one id as a license object, a compound
    expression as an expression; an unknown licence is stated as such, never left out."""
    if not expression:
        return [{"license": {"name": "NOASSERTION"}}]
    if any(op in expression.split() for op in ("AND", "OR", "WITH")):
        return [{"expression": expression}]
    if expression.startswith("LicenseRef-"):  # not on the SPDX list: a name, not an id
        return [{"license": {"name": expression}}]
    return [{"license": {"id": expression}}]


def _component(w: LockedWheel) -> dict[str, Any]:
    return {
        "type": "library",
        "bom-ref": f"pkg:pypi/{w.name}@{w.version}",
        "name": w.name,
        "version": w.version,
        "purl": f"pkg:pypi/{w.name}@{w.version}",
        "hashes": [{"alg": "SHA-256", "content": w.sha256}],
        "licenses": licenses(w.licence),
    }


class DebPackage(NamedTuple):
    name: str
    version: str
    licence: str | None = None  # the Debian short name(s) of its `Files: *` paragraph


def _dep5_licence(text: str) -> str | None:
    """The licence of a machine-readable (DEP-5) copyright file's `Files: *` paragraph, as
    Debian names it (e.g. `GPL-3+`); None for a free-form file or one without that paragraph."""
    if not text.startswith("Format:"):
        return None
    for block in text.split("\n\n"):
        fields = dict(
            line.split(":", 1) for line in block.splitlines() if ":" in line and line[0] != " "
        )
        if fields.get("Files", "").split()[:1] == ["*"] and fields.get("License", "").strip():
            return fields["License"].strip()
    return None


def _copyright_licences(rootfs_tar: Path) -> dict[str, str | None]:
    """Package -> licence from /usr/share/doc/<package>/copyright in the base's rootfs tar."""
    out: dict[str, str | None] = {}
    if not rootfs_tar.is_file():
        return out
    with tarfile.open(rootfs_tar) as tf:
        for member in tf:
            parts = member.name.removeprefix("./").split("/")
            if (
                member.isfile()
                and parts[:3] == ["usr", "share", "doc"]
                and parts[4:] == ["copyright"]
            ):
                fh = tf.extractfile(member)
                text = fh.read().decode("utf-8", errors="replace") if fh else ""
                out[parts[3]] = _dep5_licence(text)
    return out


def dpkg_packages(status_file: Path) -> list[DebPackage]:
    """Installed Debian packages in a rootfs's /var/lib/dpkg/status, each with the licence of
    its copyright file when the base's rootfs.tar lies beside the status file (the base image
    cache keeps both, mlgate.packaging.base_image)."""
    out: list[DebPackage] = []
    if not status_file.is_file():
        return out
    licences = _copyright_licences(status_file.parent / "rootfs.tar")
    for block in status_file.read_text(errors="replace").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Package") and "installed" in fields.get("Status", ""):
            name = fields["Package"]
            doc = name.split(":", 1)[0]  # multi-arch "libc6:amd64" documents in libc6/
            out.append(DebPackage(name, fields.get("Version", ""), licences.get(doc)))
    return sorted(out)


def make_sbom(
    *,
    image_name: str,
    image_version: str,
    wheels: list[LockedWheel],
    debian: Sequence[DebPackage | tuple[str, str]] | None = None,
) -> dict[str, Any]:
    components = [_component(w) for w in sorted(wheels, key=lambda w: w.name)]
    for pkg in debian or []:
        name, version, licence = DebPackage(*pkg)
        components.append(
            {
                "type": "library",
                "bom-ref": f"pkg:deb/debian/{name}@{version}",
                "name": name,
                "version": version,
                "purl": f"pkg:deb/debian/{name}@{version}",
                # Debian's own short names (GPL-2+, ...), not SPDX ids: a name, not an id
                "licenses": [{"license": {"name": licence or "NOASSERTION"}}],
            }
        )
    body = json.dumps(components, sort_keys=True).encode()
    serial = uuid.uuid5(
        uuid.NAMESPACE_URL,
        f"mlgate:{image_name}:{image_version}:" + hashlib.sha256(body).hexdigest(),
    )
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "component": {
                "type": "container",
                "bom-ref": f"{image_name}:{image_version}",
                "name": image_name,
                "version": image_version,
            },
            "tools": {"components": [{"type": "application", "name": "mlgate"}]},
        },
        "components": components,
    }


def write_sbom(sbom: dict[str, Any], path: Path) -> str:
    """Write canonical JSON; return its digest ("sha256:...")."""
    data = (json.dumps(sbom, indent=2, sort_keys=True) + "\n").encode()
    path.write_bytes(data)
    return "sha256:" + hashlib.sha256(data).hexdigest()
