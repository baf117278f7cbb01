"""`mlgate manifests validate`: render every overlay and check it, the pull-request check.

Its own module, apart from the other GitOps verbs, because it imports only the light parts of
`mlgate.gitops` (no MLflow, scikit-learn or Feast): `mlgate manifests ...` loads this module
alone (cli.py's lazy loading), so the check on every pull request starts in well under a second.
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlgate.commands._common import JSON, emit_json, out, progress, state
from mlgate.config import REPO_ROOT
from mlgate.gitops.changed import VALIDATOR_SOURCE, ChangedTargets, changed_targets
from mlgate.gitops.repo import GitopsRepo
from mlgate.gitops.validate import ValidationReport, find_targets, validate_tree

COMMANDS = ("manifests",)

manifests_app = typer.Typer(
    help="Kubernetes manifests of the platform and the models.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    @manifests_app.command("validate")
    def manifests_validate(
        ctx: typer.Context,
        root: Path | None = typer.Option(
            None, "--root", help="Checkout to validate (default: this project)."
        ),
        gitops: bool = typer.Option(
            False, "--gitops", help="Validate the GitOps repository's main instead."
        ),
        checkov: bool = typer.Option(
            False, "--checkov", help="Also run checkov (own venv, made on first use)."
        ),
        changed_since: str | None = typer.Option(
            None,
            "--changed-since",
            metavar="BASE",
            help="Only the overlays whose inputs changed since git revision BASE (all of them "
            "when a shared base or component changed): the pull-request check.",
        ),
        template: bool = typer.Option(
            False,
            "--template",
            help="The tree is mlgate's template (before `mlgate init`): list its placeholders "
            "instead of failing on them.",
        ),
        json_out: bool = JSON,
    ) -> None:
        """Render every overlay and validate schemas, Seldon rules, pod security, PromQL,
        NetworkPolicy reachability and that no placeholder is left."""
        settings = state(ctx).settings()
        crd_dir = settings.crd_schema_dir()
        picked: ChangedTargets | None = None

        def run(tree: Path) -> ValidationReport:
            nonlocal picked
            targets = None
            if changed_since is not None:
                picked = changed_targets(
                    tree, changed_since, find_targets(tree), always=[crd_dir, VALIDATOR_SOURCE]
                )
                targets = [tree / t for t in picked.targets]
            return validate_tree(tree, crd_dir, checkov=checkov, targets=targets, template=template)

        with progress("rendering and validating manifests", quiet=json_out):
            if gitops:
                repo = GitopsRepo.open(settings)
                with repo.session():
                    report = run(repo.work)
            else:
                report = run(root or REPO_ROOT)
        if json_out:
            extra = {"changed_since": picked.model_dump(mode="json")} if picked else {}
            emit_json({**report.model_dump(mode="json"), "ok": report.ok, **extra})
        else:
            if picked is not None:
                out.print(
                    f"changed since {picked.base} ({picked.commit[:10]}): {len(picked.changed)} "
                    f"path(s), {len(picked.targets)} of {picked.of} kustomization(s) to validate",
                    highlight=False,
                )
            for t in report.targets:
                mark = "[green]ok[/]" if not t.problems else f"[red]{len(t.problems)} problem(s)[/]"
                out.print(f"{t.path}: {t.resources} resources, {mark}")
            for p in report.all_problems():
                out.print(
                    f"  [red]x[/] {p.target} {p.resource or ''} [{p.check}] {p.message}",
                    highlight=False,
                )
            if report.template and report.placeholders:
                out.print(
                    f"template: {len(report.placeholders)} placeholder(s) for `mlgate init` "
                    "to replace",
                    highlight=False,
                )
            out.print(f"promtool: {report.promtool}; checkov: {report.checkov}; {report.seconds} s")
        if not report.ok:
            raise typer.Exit(1)

    app.add_typer(manifests_app, name="manifests")
