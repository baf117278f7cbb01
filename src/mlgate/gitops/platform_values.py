"""The values a cluster needs in the GitOps repository, checked, and the edits that write them.

The template ships placeholders (`gitops.placeholders`) for what differs per bank: the Git
repository Argo CD syncs from (every Application's and the ApplicationSet's `repoURL`, the
AppProject's `sourceRepos`, the canary analysis' git remote), the registry the cluster pulls
from and the platform image's digest. `mlgate init` (`gitops.init`) proposes them as a pull
request; the embedded default's bare repository is seeded with its loopback values
(`loopback_values`), so it holds no placeholder either.

The values reach YAML that clusters act on and a commit message, so each is checked strictly
before anything is written: an https or ssh repository URL with no credentials, query or
shell/YAML syntax; a registry host[:port][/path]; a platform image pinned by digest on that
registry. None may be a placeholder.

The platform image comes from `--platform-image` (REGISTRY/PATH@sha256:... or a bare digest)
or else the build record `mlgate image build --platform` wrote for this mlgate version: its
repository path on `--registry` (the digest is the image's content, the same wherever the
image is copied), so pushing the built image to the production registry is a copy, not a
rebuild.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from ruamel.yaml import YAML

from mlgate import __version__
from mlgate.config import PlatformSettings
from mlgate.errors import BadInputError
from mlgate.gitops.placeholders import UNSET_DIGEST, loopback_host, placeholder_reason
from mlgate.records.builds import PLATFORM_REPOSITORY, read_record

# The kustomize image name the manifests use for the platform image, and the CronJob's git
# remote variable (a pydantic-settings name: gitops.remote).
KUSTOMIZE_IMAGE = "mlgate-platform"
REPO_ENV = "MLGATE_GITOPS__REMOTE"

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*"
_PORT = r"(?::(?P<port>[0-9]{1,5}))?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REGISTRY_RE = re.compile(rf"^(?P<host>{_HOST}){_PORT}(?P<path>(?:/{_PATH_PART})*)$")
_REPO_PATH = r"[A-Za-z0-9][A-Za-z0-9._~-]*(?:/[A-Za-z0-9][A-Za-z0-9._~-]*)*"
HTTPS_RE = re.compile(rf"^https://(?P<host>{_HOST}){_PORT}/(?P<path>{_REPO_PATH})$")
SSH_RE = re.compile(
    rf"^ssh://(?:(?P<user>[a-z_][a-z0-9_-]{{0,31}})@)?(?P<host>{_HOST}){_PORT}/(?P<path>{_REPO_PATH})$"
)
SCP_RE = re.compile(
    rf"^(?P<user>[a-z_][a-z0-9_-]{{0,31}})@(?P<host>{_HOST}):(?P<path>{_REPO_PATH})$"
)
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
PINNED_RE = re.compile(
    rf"^(?P<repo>{_HOST}{_PORT}(?:/{_PATH_PART})+)@(?P<digest>sha256:[0-9a-f]{{64}})$"
)


class InitValues(BaseModel):
    """What `mlgate init` writes, every value checked."""

    repo_url: str
    registry: str
    platform_image: str

    @property
    def digest(self) -> str:
        return self.platform_image.rsplit("@", 1)[1]

    @property
    def repository(self) -> str:
        return self.platform_image.rsplit("@", 1)[0]

    def key(self) -> str:
        raw = "\n".join((self.repo_url, self.registry, self.platform_image))
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


def _no_placeholder(value: str, what: str) -> None:
    why = placeholder_reason(value)
    if why:
        raise BadInputError(f"{what} {value!r}: still a placeholder ({why})")


def check_repo_url(url: str, *, allow_file: bool = False) -> str:
    """An https or ssh Git URL (ssh://... or user@host:path) and nothing else: no credentials
    (they would land in git), no query, fragment, whitespace, quotes or shell syntax.
    `allow_file` admits `file://` + an absolute path (the embedded default's own remote)."""
    if not isinstance(url, str) or not url:
        raise BadInputError("--repo: a repository URL is required")
    if allow_file and url.startswith("file:///"):
        if re.fullmatch(r"file://(/[A-Za-z0-9._~%+-]+)+/?", url) and "/../" not in url + "/":
            return url
        raise BadInputError(f"--repo {url!r}: not a plain file:// path")
    if not (HTTPS_RE.fullmatch(url) or SSH_RE.fullmatch(url) or SCP_RE.fullmatch(url)):
        raise BadInputError(
            f"--repo {url!r}: not an https or ssh Git URL without credentials "
            "(https://HOST/PATH, ssh://[USER@]HOST[:PORT]/PATH or USER@HOST:PATH)"
        )
    port = re.search(r":([0-9]{1,5})/", url.split("://", 1)[-1])
    if port and not 0 < int(port.group(1)) < 65536:
        raise BadInputError(f"--repo {url!r}: port out of range")
    if "/../" in f"/{url.split('/', 3)[-1]}/" or url.endswith("/.."):
        raise BadInputError(f"--repo {url!r}: '..' in the path")
    _no_placeholder(url, "--repo")
    return url


def check_registry(registry: str) -> str:
    """HOST[:PORT][/PATH] in lower case, as an image reference starts."""
    m = REGISTRY_RE.fullmatch(registry or "")
    if (
        not m
        or "." not in m.group("host")
        and not m.group("port")
        and m.group("host") != "localhost"
    ):
        raise BadInputError(
            f"--registry {registry!r}: not a registry HOST[:PORT][/PATH] (lower-case host name "
            "with a dot or a port, e.g. registry.bank.example or 10.0.0.5:5000)"
        )
    if m.group("port") and not 0 < int(m.group("port")) < 65536:
        raise BadInputError(f"--registry {registry!r}: port out of range")
    _no_placeholder(registry, "--registry")
    return registry


def check_platform_image(image: str, registry: str) -> str:
    """REGISTRY/PATH@sha256:<64 hex> on `registry`, or a bare digest (then the image is
    REGISTRY/mlgate-platform@digest); never the unset digest."""
    if DIGEST_RE.fullmatch(image):
        image = f"{registry}/{KUSTOMIZE_IMAGE}@{image}"
    m = PINNED_RE.fullmatch(image)
    if not m:
        raise BadInputError(
            f"--platform-image {image!r}: not an image pinned by digest "
            "(REGISTRY/PATH@sha256:<64 hex>, or sha256:<64 hex>)"
        )
    if m.group("digest") == UNSET_DIGEST:
        raise BadInputError(f"--platform-image {image!r}: the unset digest is a placeholder")
    if not m.group("repo").startswith(registry.rstrip("/") + "/"):
        raise BadInputError(
            f"--platform-image {image!r}: not on --registry {registry} (the cluster pulls from "
            "there; copy the image, its digest stays the same)"
        )
    _no_placeholder(image, "--platform-image")
    return image


def recorded_platform_image(settings: PlatformSettings, registry: str) -> str:
    """The platform image `mlgate image build --platform` recorded for this mlgate version, on
    `registry` (same path and digest)."""
    rec = read_record(settings, PLATFORM_REPOSITORY, __version__)
    if rec is None:
        raise BadInputError(
            f"no platform image build record for mlgate {__version__} in {settings.ws().root}: "
            "run `mlgate image build --platform` first, or pass --platform-image "
            "REGISTRY/PATH@sha256:..."
        )
    path = rec.repository.split("/", 1)[1] if "/" in rec.repository else rec.repository
    return check_platform_image(f"{registry.rstrip('/')}/{path}@{rec.digest}", registry)


def resolve_values(
    settings: PlatformSettings, repo_url: str, registry: str, platform_image: str | None
) -> InitValues:
    registry = check_registry(registry)
    return InitValues(
        repo_url=check_repo_url(repo_url),
        registry=registry,
        platform_image=(
            check_platform_image(platform_image, registry)
            if platform_image is not None
            else recorded_platform_image(settings, registry)
        ),
    )


# How an init commit states its values (its body), written by `init` and read back by the
# merge, which re-derives the files from them (`pr.check_pr_diff`).
_BODY = {
    "repo_url": "repository (Argo CD, canary analysis) = ",
    "registry": "registry = ",
    "platform_image": "platform image = ",
}


def values_lines(values: InitValues) -> list[str]:
    return [label + getattr(values, field) for field, label in _BODY.items()]


def values_from_message(message: str) -> InitValues:
    """The values an init commit's body states, each checked as `init` checks it (a file://
    repository is the embedded default's own); BadInputError when one is missing or bad."""
    found: dict[str, str] = {}
    for line in message.splitlines():
        for field, label in _BODY.items():
            if line.startswith(label) and field not in found:
                found[field] = line[len(label) :]
    missing = [label.rstrip(" =") for field, label in _BODY.items() if field not in found]
    if missing:
        raise BadInputError(f"the init commit does not state: {', '.join(missing)}")
    registry = check_registry(found["registry"])
    return InitValues(
        repo_url=check_repo_url(found["repo_url"], allow_file=True),
        registry=registry,
        platform_image=check_platform_image(found["platform_image"], registry),
    )


# --- the edits -------------------------------------------------------------------------------


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _set_repo(node: Any, url: str) -> None:
    if isinstance(node, dict):
        for k in list(node):
            if k == "repoURL" and isinstance(node[k], str):
                node[k] = url
            elif k == "sourceRepos" and isinstance(node[k], list):
                node[k].clear()
                node[k].append(url)
            else:
                _set_repo(node[k], url)
    elif isinstance(node, list):
        for v in node:
            _set_repo(v, url)


def _set_images(doc: Any, v: InitValues) -> None:
    for entry in doc.get("images") or []:
        if entry.get("name") == KUSTOMIZE_IMAGE:
            entry["newName"] = v.repository
            entry["digest"] = v.digest


def _set_remote_env(node: Any, url: str) -> None:
    if isinstance(node, dict):
        if node.get("name") == REPO_ENV and "value" in node:
            node["value"] = url
        for val in node.values():
            _set_remote_env(val, url)
    elif isinstance(node, list):
        for val in node:
            _set_remote_env(val, url)


def _repo_urls(doc: Any, v: InitValues) -> None:
    _set_repo(doc, v.repo_url)


def _remote_env(doc: Any, v: InitValues) -> None:
    _set_remote_env(doc, v.repo_url)


# Every file `init` writes, and what it writes there (a pull request of `init` may change only
# these files: `pr.check_pr_diff`).
EDITS: dict[str, Callable[[Any, InitValues], None]] = {
    "argocd/applicationset.yaml": _repo_urls,
    "argocd/appproject.yaml": _repo_urls,
    "argocd/platform-application.yaml": _repo_urls,
    "manifests/base/kustomization.yaml": _set_images,
    "manifests/platform/kustomization.yaml": _set_images,
    "manifests/components/canary/canary-analysis-cronjob.yaml": _remote_env,
}
INIT_FILES = tuple(EDITS)


def apply_values(root: Path, values: InitValues) -> list[str]:
    """Write `values` into the tree at `root` (ruamel round trips: comments and order stay);
    the files changed, relative to `root`."""
    changed = []
    for rel in INIT_FILES:
        path = root / rel
        if not path.is_file():
            continue
        edit = EDITS[rel]
        y = _yaml()
        before = path.read_text(encoding="utf-8")
        docs = list(y.load_all(before))
        for doc in docs:
            if doc is not None:
                edit(doc, values)
        buf = io.StringIO()
        y.dump_all(docs, buf)
        if buf.getvalue() != before:
            path.write_text(buf.getvalue(), encoding="utf-8")
            changed.append(rel)
    return changed


def loopback_values(settings: PlatformSettings, remote: Path) -> InitValues | None:
    """The embedded default's own values: its bare repository (file://), the loopback registry
    and the platform image recorded there (else the unset digest, which a loopback registry
    may keep: nothing pulls from it). None when the registry is not loopback."""
    registry = settings.registry.address
    if not loopback_host(registry):
        return None
    rec = read_record(settings, PLATFORM_REPOSITORY, __version__)
    digest = rec.digest if rec is not None else UNSET_DIGEST
    path = (
        rec.repository.split("/", 1)[1] if rec is not None and "/" in rec.repository else None
    ) or KUSTOMIZE_IMAGE
    return InitValues(
        repo_url=check_repo_url(remote.resolve().as_uri(), allow_file=True),
        registry=registry,
        platform_image=f"{registry}/{path}@{digest}",
    )
