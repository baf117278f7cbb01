"""`mlgate init`: thin shell over `mlgate.gitops.init` (the cluster's values as a pull request)."""

from __future__ import annotations

import typer

from mlgate.commands._common import console, emit_json, progress, state

COMMANDS = ("init",)


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init_cmd(
        ctx: typer.Context,
        repo: str = typer.Option(
            ...,
            "--repo",
            help="The GitOps repository Argo CD syncs from: https://HOST/PATH or "
            "ssh://[USER@]HOST/PATH (USER@HOST:PATH), no credentials.",
        ),
        registry: str = typer.Option(
            ..., "--registry", help="Registry the cluster pulls from: HOST, HOST:PORT or HOST/PATH."
        ),
        platform_image: str | None = typer.Option(
            None,
            "--platform-image",
            help="REGISTRY/PATH@sha256:... or sha256:... (default: the build record of "
            "`mlgate image build --platform`, on --registry).",
        ),
        json_out: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    ) -> None:
        """Write the Argo CD repository URLs, the registry and the platform image digest into
        the GitOps repository, as a pull request (nothing when it already holds them)."""
        from mlgate.gitops.init import init

        with progress("preparing the platform values", quiet=json_out):
            res = init(state(ctx).settings(), repo, registry, platform_image)
        if json_out:
            emit_json(res)
            return
        pr = res.pull_request
        if pr is None:
            console.print("the GitOps repository already holds these values: nothing to change")
            return
        said = "[green]opened[/]" if res.opened else "already open:"
        console.print(f"{said} {pr.branch}: {pr.subject}", highlight=False)
        console.print(f"  review: mlgate pr show {pr.branch}")
        console.print(f"  merge:  mlgate pr merge {pr.branch} --approver NAME")
