"""Demo step 50: the trained version's model-server image, built, pushed, run and scored.

Registry up (loopback docker-registry), `mlgate image build` of the challenger version (the
build record is what the gitops step pins by digest), then the pushed image's server is run
read-only as non-root for a moment and scores one holdout application. The registry stays up
afterwards, so the user can reach the image (`skopeo inspect`, `mlgate registry status`,
`mlgate registry down`); in fast mode (the demo's test) it is stopped, leaving no process
behind: later steps only need the build record.
"""

from __future__ import annotations

from typing import Any

from mlgate.demo import DemoContext, DemoStep
from mlgate.errors import ConfigError


def run(ctx: DemoContext) -> dict[str, Any]:
    from mlgate.gitops.evidence import policy_in_force, release_policy
    from mlgate.packaging import registry, tools
    from mlgate.packaging.build import build_model_image
    from mlgate.packaging.container_run import run_image
    from mlgate.serving.client import infer
    from mlgate.serving.runtime import CUTOFF_ENV
    from mlgate.serving.server import free_port, wait_ready
    from mlgate.training.registry import load_holdout, load_scorer

    settings = ctx.settings
    for tool in ("buildah", "skopeo", "docker-registry", "debootstrap"):
        try:
            tools.require(tool)
        except ConfigError as exc:
            ctx.console.print(f"[yellow]image step skipped: {exc}[/]")
            return {"skipped": str(exc)}
    train = ctx.results.get("train") or {}
    model = str(train.get("model") or "credit_risk")
    version = str(train.get("version") or "challenger")
    st = registry.up(settings)
    if st.pid is None:  # another workspace's (the default address is one per machine)
        ctx.say(f"registry {st.address} answers, not started by this workspace: pushing there")
    else:
        ctx.console.print(f"registry {st.address} up (storage {st.storage})")
    with ctx.progress("building the model-server image") as say:
        rec = build_model_image(settings, model, version, progress=say)
    ctx.say(f"image {rec.reference} pushed, digest {rec.digest[:19]}")
    ctx.console.print(
        "labels: run "
        f"{rec.labels.get('io.mlgate.mlflow.run_id', '')[:12]}, data "
        f"{rec.labels.get('io.mlgate.data.fingerprint', '')[:19]}, SBOM {rec.sbom_digest[:19]}"
    )
    # Run the pushed image (by digest) read-only as its non-root user; score one application.
    holdout = load_holdout(settings, model, rec.version).head(1)
    offline = float(load_scorer(settings, model, rec.version).predict_pd(holdout)[0])
    # The cut-off is credit policy, passed in as the overlay would: the policy's value.
    cutoff = release_policy(policy_in_force(settings, model, rec.version)).cutoff
    port = free_port()
    env = {
        CUTOFF_ENV: cutoff,
        "MLSERVER_HTTP_PORT": str(port),
        "MLSERVER_GRPC_PORT": str(free_port()),
        "MLSERVER_METRICS_PORT": str(free_port()),
        "MLSERVER_HOST": "127.0.0.1",
    }
    with run_image(settings, f"{rec.repository}@{rec.digest}", env=env):
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, model, None, 120)
        scorer_features = list(load_scorer(settings, model, rec.version).features)
        score = infer(url, model, holdout[scorer_features])[0]
    if ctx.fast:
        registry.down(settings)
    ctx.say(
        f"the image's server scored one holdout application: PD {score.pd:.4f} "
        f"(offline {offline:.4f}) -> {score.decision}; reasons "
        + ", ".join(r["code"] for r in score.reason_codes)
    )
    return {
        "model": model,
        "version": rec.version,
        "repository": rec.repository,
        "reference": rec.reference,
        "digest": rec.digest,
        "sbom_digest": rec.sbom_digest,
        "pd": score.pd,
        "offline_pd": offline,
    }


STEP = DemoStep(
    order=50,
    name="image",
    title="Model-server image: build, push, run",
    run=run,
    chapter=2,
)
