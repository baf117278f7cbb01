"""Demo step 60: v1 goes dev -> stage -> prod, each promotion decided by that environment's gates.

Each promotion is a pull request in the workspace's GitOps repository, merged with approvals
(`demo.acts.promote_env`): the gates run for the environment (the champion is what git says
runs there), a PASS promotes on the merits, anything else only break-glass.

Run again on the same workspace, prod already runs a version of the earlier run, so this run's
v1 enters prod as a canary beside it (the platform's rule). Chapter 4 tells the canary story
and needs prod without one: the canary is promoted at once, as a recorded override naming why.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlgate.demo import DemoContext, DemoStep, acts
from mlgate.gitops import canary
from mlgate.gitops.overlay import ENVS
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.status import stable_version


def run(ctx: DemoContext) -> dict[str, Any]:
    model, v1 = acts.trained(ctx)
    image = acts.image(ctx, model, v1)
    repo = GitopsRepo.open(ctx.settings)
    ctx.console.print(f"GitOps remote: {repo.remote} (working clone {repo.work})")
    earlier = stable_version(ctx.settings, model, "prod")
    ctx.say(f"{model} v{v1} through the environments, one reviewed PR each:")
    promotions = [acts.promote_env(ctx, model, v1, env, image) for env in ENVS]
    if earlier is not None:
        prod = promotions[-1]
        reason = (
            f"demo re-run: prod already ran v{earlier} of an earlier run, so v{v1} entered as a "
            f"canary; chapter 4 tells the canary story, so v{v1} replaces v{earlier} on its prod "
            f"gate report ({prod['overall']})"
        )
        ctx.say(f"  prod ran v{earlier} of an earlier run: v{v1} replaces it (recorded override)")
        pr = canary.promote_canary(
            ctx.settings, model, "prod", Path(prod["report_dir"]), override_reason=reason
        )
        commit = acts.merge(ctx, pr, acts.APPROVERS)
        promotions.append(
            {"version": v1, "env": "prod", "override_reason": reason, "commit": commit}
        )
    return {"model": model, "version": v1, "image": image, "promotions": promotions}


STEP = DemoStep(
    order=60,
    name="promote",
    title="Promotion by pull requests: dev -> stage -> prod",
    run=run,
    chapter=2,
)
