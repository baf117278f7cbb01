"""`mlgate registry up|down|status` and `mlgate image build|context`: thin shells over packaging."""

from __future__ import annotations

from pathlib import Path

import typer

from mlgate.commands._common import emit_json, out, progress, state

COMMANDS = ("registry", "image")


def register(app: typer.Typer) -> None:
    reg = typer.Typer(
        help="The loopback OCI registry (Debian's docker-registry).", no_args_is_help=True
    )
    img = typer.Typer(
        help="Versioned images: model servers and the platform.", no_args_is_help=True
    )
    app.add_typer(reg, name="registry")
    app.add_typer(img, name="image")

    def _show(st: object, as_json: bool) -> None:
        from mlgate.packaging.registry import RegistryStatus

        assert isinstance(st, RegistryStatus)
        if as_json:
            emit_json(st)
            return
        state_txt = "[green]up[/]" if st.answering else "[red]down[/]"
        ro = " read-only" if st.readonly else ""
        if st.answering and not st.pid:
            # Another workspace's registry (or one run by hand): images pushed go to its
            # storage; `registry down` here leaves it running.
            out.print(
                f"registry {st.address}: {state_txt}, not started by this workspace (its "
                f"storage is not {st.storage}; `registry down` here leaves it running)"
            )
            return
        owner = f" (pid {st.pid})" if st.pid else ""
        out.print(f"registry {st.address}: {state_txt}{ro}{owner}  storage {st.storage}")

    @reg.command("up")
    def up(
        ctx: typer.Context,
        readonly: bool = typer.Option(False, "--readonly", help="Refuse pushes (maintenance)."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Start the registry on loopback (a no-op if one answers at the address)."""
        from mlgate.packaging import registry

        _show(registry.up(state(ctx).settings(), readonly=readonly), as_json)

    @reg.command("down")
    def down(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
        """Stop the registry this workspace started."""
        from mlgate.packaging import registry

        _show(registry.down(state(ctx).settings()), as_json)

    @reg.command("status")
    def status(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
        """Whether the registry answers, and whether this workspace started it."""
        from mlgate.packaging import registry

        _show(registry.status(state(ctx).settings()), as_json)

    @img.command("build")
    def build(
        ctx: typer.Context,
        model: str | None = typer.Option(None, "--model", help="Registered model name."),
        version: str | None = typer.Option(
            None, "--version", help="Model version number or alias (e.g. challenger)."
        ),
        platform: bool = typer.Option(
            False, "--platform", help="Build the platform image (mlgate + pinned env + kfp)."
        ),
        push: bool = typer.Option(True, "--push/--no-push", help="Push to registry.address."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Build an image with buildah, push it, print reference and digest."""
        from mlgate.errors import BadInputError
        from mlgate.packaging import build as b

        settings = state(ctx).settings()
        if not platform and not (model and version):
            raise BadInputError("--model and --version are required (or --platform)")
        what = "the platform image" if platform else f"{model} {version}"
        with progress(f"building {what}", quiet=as_json) as say:
            if platform:
                rec = b.build_platform_image(settings, push=push, progress=say)
            else:
                assert model and version
                rec = b.build_model_image(settings, model, version, push=push, progress=say)
        if as_json:
            emit_json(rec)
            return
        out.print(f"reference {rec.reference}")
        out.print(f"digest    {rec.digest or '(not pushed)'}")
        if rec.reused:
            out.print("unchanged: the registry already held this content")

    @img.command("context")
    def context(
        ctx: typer.Context,
        model: str = typer.Option(..., "--model"),
        version: str = typer.Option(..., "--version"),
        dest: Path = typer.Option(..., "--out", help="New directory for the build context."),
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """Write the model-server build context (for docker buildx in CI)."""
        from mlgate.packaging.build import stage_model_context

        spec = stage_model_context(state(ctx).settings(), model, version, dest)
        if as_json:
            emit_json({"context": str(dest), "containerfile": str(dest / "Containerfile"),
                       "labels": spec.labels})  # fmt: skip
        else:
            out.print(f"build context {dest} (Containerfile, wheelhouse/, model/, mlserver/)")
