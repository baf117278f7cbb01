"""A CycloneDX 1.5 SBOM of what an image installs, made from the hash-locked wheelhouse.

The wheelhouse lock is the exact list of distributions the image's venv receives (installed
with --require-hashes), so the SBOM is generated from it before the build: every component has
its PyPI package URL, the SHA-256 of the wheel installed and its licence (CycloneDX `licenses`:
the SPDX id, or the SPDX expression when it combines several), read by the same reader that
`make test`'s licence check uses (mlgate.packaging.licences). Its digest goes into the image's
labels, and the file itself into the image (/opt/mlgate/sbom.cdx.json). It is deterministic
(no timestamp; the serial number is derived from the content) so an unchanged version rebuilds
to the same SBOM digest. The base image's Debian packages are listed from its dpkg status.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

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


def dpkg_packages(status_file: Path) -> list[tuple[str, str]]:
    """(name, version) of installed Debian packages in a rootfs's /var/lib/dpkg/status."""
    out: list[tuple[str, str]] = []
    if not status_file.is_file():
        return out
    for block in status_file.read_text(errors="replace").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Package") and "installed" in fields.get("Status", ""):
            out.append((fields["Package"], fields.get("Version", "")))
    return sorted(out)


def make_sbom(
    *,
    image_name: str,
    image_version: str,
    wheels: list[LockedWheel],
    debian: list[tuple[str, str]] | None = None,
) -> dict[str, Any]:
    components = [_component(w) for w in sorted(wheels, key=lambda w: w.name)]
    for name, version in debian or []:
        components.append(
            {
                "type": "library",
                "bom-ref": f"pkg:deb/debian/{name}@{version}",
                "name": name,
                "version": version,
                "purl": f"pkg:deb/debian/{name}@{version}",
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
