"""GitOps verbs: promote, canary, rollback, status, pr, aliases.

Thin shell over `mlgate.gitops`: every change is a commit on a branch (a pull request) in the
GitOps repository; `mlgate pr merge` is the embedded default's merge button.
`canary_app` is public so the canary-analysis capability can add `mlgate canary analyze`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from mlgate.commands._common import JSON, console, emit_json, out, progress, state
from mlgate.config import PlatformSettings
from mlgate.gitops.pr import MergeResult, PullRequest

COMMANDS = ("promote", "canary", "rollback", "status", "pr", "aliases")

canary_app = typer.Typer(
    help="Canary steps in an environment, each a reviewed commit.", no_args_is_help=True
)
pr_app = typer.Typer(
    help="Pull requests of the GitOps repository (the local stand-in for GitHub).",
    no_args_is_help=True,
)
aliases_app = typer.Typer(help="MLflow aliases that mirror git.", no_args_is_help=True)


def _opened(pr: PullRequest, json_out: bool) -> None:
    if json_out:
        emit_json(pr)
        return
    console.print(f"[green]opened[/] {pr.branch}: {pr.subject}")
    if pr.github_url:
        console.print(f"  GitHub: {pr.github_url}")
    console.print(f"  review: mlgate pr show {pr.branch}")
    console.print(f"  merge:  mlgate pr merge {pr.branch} --approver NAME")


def _evidence(
    settings: PlatformSettings,
    model: str,
    version: str,
    env: str,
    report: Path | None,
    *,
    overridden: bool,
) -> tuple[str, Path | None]:
    """(version number, --report or else the folder `mlgate gates run` writes by default for
    that number and environment, none when the gates are overridden): `--version challenger`
    needs no path either, and the report is the one judged for the number the alias names."""
    from mlgate.training.versions import version_number

    number = version_number(settings, model, version)
    if report is not None or overridden:
        return number, report
    from mlgate.errors import BadInputError
    from mlgate.gates.run import default_report_dir

    default = default_report_dir(settings, model, number, env)
    if not (default / "report.json").is_file():
        raise BadInputError(
            f"{default}: no gate report for {model} {number} in {env}; run `mlgate gates run "
            f"--model {model} --challenger {number} --env {env}` first, or pass --report"
        )
    return number, default


def _override(override_gates: bool, reason: str | None) -> str | None:
    if override_gates:
        return reason if reason is not None else ""
    if reason is not None:
        from mlgate.errors import BadInputError

        raise BadInputError("--reason is only used with --override-gates")
    return None


def register(app: typer.Typer) -> None:
    @app.command("promote")
    def promote_cmd(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model", help="Registered model name, e.g. credit_risk."),
        version: str = typer.Option(
            ..., "--version", help="MLflow model version, or an alias (e.g. challenger)."
        ),
        to: str = typer.Option(..., "--to", help="dev | stage | prod"),
        report: Path | None = typer.Option(
            None,
            "--report",
            help="Gate report directory (report.json + report.md; default: the one `gates run` "
            "wrote for this version and environment).",
        ),
        image: str | None = typer.Option(
            None, "--image", help="REPOSITORY@sha256:... (default: the image build record)."
        ),
        override_gates: bool = typer.Option(
            False, "--override-gates", help="Break-glass: promote without a PASS report."
        ),
        reason: str | None = typer.Option(
            None, "--reason", help="Why the gates are overridden (goes into the commit)."
        ),
        json_out: bool = JSON,
    ) -> None:
        """Open the PR that promotes MODEL VERSION to an environment (prod: as canary)."""
        from mlgate.gitops.promote import promote

        settings = state(ctx).settings()
        override = _override(override_gates, reason)
        with progress(f"promoting {model} {version} to {to}", quiet=json_out):
            number, evidence = _evidence(
                settings, model, version, to, report, overridden=override is not None
            )
            pr = promote(
                settings, model, number, to, evidence, image=image, override_reason=override
            )
        _opened(pr, json_out)

    @canary_app.command("start")
    def canary_start(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        version: str = typer.Option(
            ..., "--version", help="MLflow model version, or an alias (e.g. challenger)."
        ),
        env: str = typer.Option("prod", "--env"),
        report: Path | None = typer.Option(
            None,
            "--report",
            help="Gate report directory (default: the one `gates run` wrote for this version "
            "and environment).",
        ),
        weight: int | None = typer.Option(
            None, "--weight", help="Traffic % (default: policy canary.initial_weight)."
        ),
        image: str | None = typer.Option(None, "--image"),
        override_gates: bool = typer.Option(False, "--override-gates"),
        reason: str | None = typer.Option(None, "--reason"),
        shadow_report: Path | None = typer.Option(
            None,
            "--shadow-report",
            help="The version's passing shadow analysis (`mlgate shadow analyze --report`): "
            "required when the policy's canary.phases start with shadow.",
        ),
        json_out: bool = JSON,
    ) -> None:
        """Start VERSION as canary next to the stable version (replacing its shadow, if any)."""
        from mlgate.gitops import canary

        settings = state(ctx).settings()
        override = _override(override_gates, reason)
        with progress(f"starting {model} {version} as canary in {env}", quiet=json_out):
            number, evidence = _evidence(
                settings, model, version, env, report, overridden=override is not None
            )
            pr = canary.start(
                settings,
                model,
                env,
                number,
                evidence,
                weight=weight,
                image=image,
                override_reason=override,
                shadow_report=shadow_report,
            )
        _opened(pr, json_out)

    @canary_app.command("set-weight")
    def canary_set_weight(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        weight: int = typer.Option(..., "--weight", help="Canary traffic %, 1..99."),
        env: str = typer.Option("prod", "--env"),
        json_out: bool = JSON,
    ) -> None:
        """Change the canary's traffic weight (in git; Argo CD applies it)."""
        from mlgate.gitops import canary

        with progress(f"canary weight {weight}%", quiet=json_out):
            pr = canary.set_weight(state(ctx).settings(), model, env, weight)
        _opened(pr, json_out)

    @canary_app.command("promote")
    def canary_promote(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        env: str = typer.Option("prod", "--env"),
        report: Path | None = typer.Option(None, "--report", help="Canary gate report directory."),
        override_gates: bool = typer.Option(False, "--override-gates"),
        reason: str | None = typer.Option(None, "--reason"),
        json_out: bool = JSON,
    ) -> None:
        """Make the canary stable and remove the old stable predictor."""
        from mlgate.gitops import canary

        override = _override(override_gates, reason)
        with progress(f"promoting the {env} canary of {model}", quiet=json_out):
            pr = canary.promote_canary(
                state(ctx).settings(), model, env, report, override_reason=override
            )
        _opened(pr, json_out)

    @canary_app.command("abort")
    def canary_abort(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        env: str = typer.Option("prod", "--env"),
        reason: str = typer.Option(..., "--reason", help="Why (recorded with the quarantine)."),
        json_out: bool = JSON,
    ) -> None:
        """Remove the canary (all traffic to stable) and quarantine its version. Always allowed."""
        from mlgate.gitops import canary

        with progress(f"aborting the {env} canary of {model}", quiet=json_out):
            pr = canary.abort(state(ctx).settings(), model, env, reason)
        _opened(pr, json_out)

    app.add_typer(canary_app, name="canary")

    @app.command("rollback")
    def rollback_cmd(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        env: str = typer.Option(..., "--env"),
        reason: str = typer.Option("", "--reason"),
        json_out: bool = JSON,
    ) -> None:
        """`git revert` the latest change to ENV and quarantine the reverted version."""
        from mlgate.gitops.rollback import rollback

        with progress(f"rolling back {model} in {env}", quiet=json_out):
            pr = rollback(state(ctx).settings(), model, env, reason)
        _opened(pr, json_out)

    @app.command("status")
    def status_cmd(ctx: typer.Context, json_out: bool = JSON) -> None:
        """What runs where (model x env), read from the GitOps repository's main alone."""
        from mlgate.gitops.status import read_status, status_table

        with progress("reading git", quiet=json_out):
            st = read_status(state(ctx).settings())
        if json_out:
            emit_json(st)
            return
        out.print(status_table(st))
        if st.open_prs:
            out.print("open pull requests: " + ", ".join(st.open_prs))

    @pr_app.command("list")
    def pr_list(ctx: typer.Context, json_out: bool = JSON) -> None:
        """Open pull requests."""
        from mlgate.gitops.pr import list_prs

        prs = list_prs(state(ctx).settings())
        if json_out:
            emit_json(prs)
            return
        for p in prs:
            out.print(f"{p.branch}  [{p.author}] {p.subject}")
        if not prs:
            out.print("no open pull requests")

    @pr_app.command("show")
    def pr_show(
        ctx: typer.Context, branch: str = typer.Argument(...), json_out: bool = JSON
    ) -> None:
        """A pull request: description (the gate report), trailers and diff."""
        from mlgate.gitops.pr import show_pr

        p = show_pr(state(ctx).settings(), branch)
        if json_out:
            emit_json(p)
            return
        out.print(f"[bold]{p.subject}[/]  by {p.author} <{p.author_email}>", highlight=False)
        out.print(p.description or "(no description)", markup=False, highlight=False)
        out.print(p.diff or "", markup=False, highlight=False)

    @pr_app.command("merge")
    def pr_merge(
        ctx: typer.Context,
        branch: str | None = typer.Argument(
            None, help="The PR's branch (or name it by --model and --env)."
        ),
        model: str | None = typer.Option(
            None, "--model", help="With --env: the one open PR that changes MODEL in ENV."
        ),
        env: str | None = typer.Option(None, "--env", help="With --model."),
        approver: list[str] = typer.Option(
            [],
            "--approver",
            help="Who approved: a name on the GitOps repo's reviewers.yaml (repeat for two). "
            "Not with gitops.github_repo: there the PR's GitHub reviews are the approvals.",
        ),
        json_out: bool = JSON,
    ) -> None:
        """Merge under the four-eyes rules (adds Approved-by trailers)."""
        from mlgate.errors import BadInputError
        from mlgate.gitops.pr import merge_pr, open_pr_for

        settings = state(ctx).settings()
        by_target = model is not None or env is not None
        if (branch is None) != by_target or (by_target and not (model and env)):
            raise BadInputError("name the pull request: BRANCH, or both --model and --env")
        with progress("merging", quiet=json_out):
            if branch is None:
                assert model is not None and env is not None
                branch = open_pr_for(settings, model, env)
            res: MergeResult = merge_pr(settings, branch, approver)
        if json_out:
            emit_json(res)
            return
        console.print(
            f"[green]merged[/] {res.branch} as {res.commit[:10]} "
            f"(approved by {', '.join(res.approvers)})"
        )

    @pr_app.command("close")
    def pr_close(
        ctx: typer.Context, branch: str = typer.Argument(...), json_out: bool = JSON
    ) -> None:
        """Close a pull request without merging it (its branch is deleted)."""
        from mlgate.gitops.pr import close_pr

        p = close_pr(state(ctx).settings(), branch)
        if json_out:
            emit_json(p)
            return
        console.print(f"closed {p.branch} ({p.subject})")

    app.add_typer(pr_app, name="pr")

    @aliases_app.command("sync")
    def aliases_sync(
        ctx: typer.Context,
        model: list[str] = typer.Option([], "--model", help="Only these models."),
        json_out: bool = JSON,
    ) -> None:
        """Set MLflow aliases dev/stage/prod/champion to what git says runs (idempotent)."""
        from mlgate.gitops.aliases import sync_aliases

        with progress("syncing MLflow aliases with git", quiet=json_out):
            res = sync_aliases(state(ctx).settings(), model or None)
        if json_out:
            emit_json(res)
            return
        for fix in res.fixed:
            out.print(f"{fix.model}@{fix.alias}: {fix.before or '-'} -> {fix.after or '(removed)'}")
        out.print(f"checked {res.checked} aliases, fixed {len(res.fixed)}")
        for m in res.missing_models:
            console.print(f"[yellow]warning:[/] {m} is not a registered model in MLflow")

    app.add_typer(aliases_app, name="aliases")
