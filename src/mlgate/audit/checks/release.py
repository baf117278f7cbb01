"""Each change pins in its environment's release.yaml what its trailers say it pins: the
version, image and weight of `gitops.pr.expected_release_fields`, the rule `pr merge` applies to
the pull request. Checked again on main, because a commit pushed around the merge (or amended
after it) could name one version in its trailers, the lineage every reviewer reads, while
release.yaml, what Argo CD deploys, runs another."""

from __future__ import annotations

from mlgate.audit.verify import CommitContext, Gap, register_check
from mlgate.gitops.overlay import RELEASE_FILE, overlay_dir
from mlgate.gitops.pr import expected_release_fields

CHECK = "release"


@register_check(CHECK, about="release.yaml pins the version, image and weight the trailers name")
def release_matches_trailers(ctx: CommitContext) -> list[Gap]:
    t = ctx.trailers
    want = expected_release_fields(t) if t is not None else {}
    if t is None or not want:  # no trailers: check `trailers`; a rollback restores a state
        return []
    rel = ctx.mainline.release_at(ctx.commit.sha, t.model, t.environment)
    wrong = []
    for name, value in want.items():
        got = None if rel is None else getattr(rel, name)
        if got != value:
            wrong.append(f"{name} is {got!r}, its trailers say {value!r}")
    if not wrong:
        return []
    path = f"{overlay_dir(t.model, t.environment)}/{RELEASE_FILE}"
    return [
        ctx.gap(
            CHECK,
            f"{path} does not pin what its trailers name ({t.change} of version "
            f"{t.model_version}): what Argo CD deploys is not what the lineage says",
            problems=wrong,
        )
    ]
