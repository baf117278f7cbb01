"""Demo step 60: v1 goes dev -> stage -> prod, each promotion decided by that environment's gates.

Each promotion is a pull request in the workspace's GitOps repository, merged with approvals
(`demo.acts.promote_env`): the gates run for the environment (the champion is what git says
runs there), a PASS promotes on the merits, anything else only break-glass.
"""

from __future__ import annotations

from typing import Any

from mlgate.demo import DemoContext, DemoStep, acts
from mlgate.gitops.overlay import ENVS
from mlgate.gitops.repo import GitopsRepo


def run(ctx: DemoContext) -> dict[str, Any]:
    model, v1 = acts.trained(ctx)
    image = acts.image(ctx, model, v1)
    repo = GitopsRepo.open(ctx.settings)
    ctx.console.print(f"GitOps remote: {repo.remote} (working clone {repo.work})")
    ctx.say(f"{model} v{v1} through the environments, one reviewed PR each:")
    promotions = [acts.promote_env(ctx, model, v1, env, image) for env in ENVS]
    return {"model": model, "version": v1, "image": image, "promotions": promotions}


STEP = DemoStep(
    order=60,
    name="promote",
    title="Promotion by pull requests: dev -> stage -> prod",
    run=run,
    chapter=2,
)
