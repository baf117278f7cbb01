"""Submit and schedule pipelines on a Kubeflow Pipelines API server through `kfp.Client`.

What gets submitted is the committed compiled YAML (what reviewers saw), after checking it is
up to date. The YAML is uploaded as a pipeline version named after its content hash, so the
Kubeflow UI lists each distinct pipeline once per change and a re-submit of the same YAML
reuses the version; runs and recurring runs reference that version rather than carrying an
anonymous copy of the spec. Everything the server says goes through `kfp_server_api` (the
client of the pinned server version); failures become ExternalServiceError naming the host.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlgate.errors import BadInputError, ExternalServiceError
from mlgate.pipelines import compiling
from mlgate.pipelines.cron import to_kfp_cron

DEFAULT_EXPERIMENT = "mlgate"


class PipelineRef(BaseModel):
    name: str
    display_name: str
    pipeline_id: str
    pipeline_version_id: str
    version_name: str
    uploaded: bool  # False when this exact YAML was already on the server


class SubmitResult(BaseModel):
    host: str
    pipeline: PipelineRef
    experiment: str
    experiment_id: str
    run_id: str
    run_name: str
    url: str


class ScheduleResult(BaseModel):
    host: str
    pipeline: PipelineRef
    experiment: str
    experiment_id: str
    recurring_run_id: str
    recurring_run_name: str
    cron: str  # the six-field expression sent to KFP
    cron_input: str
    url: str


@contextlib.contextmanager
def _server_errors(host: str, what: str) -> Iterator[None]:
    """kfp prints links on stdout and raises several exception types; tame both."""
    import kfp_server_api
    import urllib3

    with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            yield
        except kfp_server_api.ApiException as exc:
            body = (exc.body or "").strip() if isinstance(exc.body, str) else exc.body
            raise ExternalServiceError(
                f"Kubeflow Pipelines at {host}: {what} failed: HTTP {exc.status} {exc.reason}",
                problems=[str(body)[:500]] if body else None,
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError, TimeoutError) as exc:
            raise ExternalServiceError(
                f"Kubeflow Pipelines at {host}: {what} failed: {exc}"
            ) from exc


def connect(host: str, *, namespace: str | None = None, token: str | None = None) -> Any:
    """A kfp.Client for `host` (http(s)://...); `token` is a bearer token if the API needs one."""
    if not host.startswith(("http://", "https://")):
        raise BadInputError(f"--host {host!r}: give the full URL, e.g. http://localhost:8080")
    import kfp

    with _server_errors(host, "connect"):
        return kfp.Client(host=host, namespace=namespace or "kubeflow", existing_token=token)


def _committed_package(name: str) -> Path:
    """The committed compiled YAML, refusing a stale or missing one."""
    result = compiling.compile_all([name], check=True)[0]
    if result.status != "up-to-date":
        raise BadInputError(
            f"{result.path} is {result.status}: run `mlgate pipeline compile` and commit it"
        )
    return Path(result.path)


def _version_name(name: str, package: Path) -> str:
    docs = compiling.normalise(package.read_text(encoding="utf-8"))
    digest = hashlib.sha256(json.dumps(docs, sort_keys=True).encode()).hexdigest()[:12]
    return f"{name}-{digest}"


def _eq_filter(value: str) -> str:
    return json.dumps(
        {"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": value}]}
    )


def upload(client: Any, host: str, name: str, package: Path) -> PipelineRef:
    """Upload `package` as pipeline `display_name` (or a new version of it); reuse if present."""
    display = compiling.normalise(package.read_text(encoding="utf-8"))[0]["pipelineInfo"]["name"]
    version_name = _version_name(name, package)
    with _server_errors(host, f"upload pipeline {display}"):
        pipeline_id = client.get_pipeline_id(display)
        if pipeline_id is None:
            created = client.upload_pipeline(str(package), pipeline_name=display)
            pipeline_id = created.pipeline_id
            # The server creates the first version with the upload; name it by content too.
            version = client.upload_pipeline_version(
                str(package), pipeline_version_name=version_name, pipeline_id=pipeline_id
            )
            return PipelineRef(
                name=name,
                display_name=display,
                pipeline_id=pipeline_id,
                pipeline_version_id=version.pipeline_version_id,
                version_name=version_name,
                uploaded=True,
            )
        found = client.list_pipeline_versions(
            pipeline_id, page_size=1, filter=_eq_filter(version_name)
        )
        if found.pipeline_versions:
            return PipelineRef(
                name=name,
                display_name=display,
                pipeline_id=pipeline_id,
                pipeline_version_id=found.pipeline_versions[0].pipeline_version_id,
                version_name=version_name,
                uploaded=False,
            )
        version = client.upload_pipeline_version(
            str(package), pipeline_version_name=version_name, pipeline_id=pipeline_id
        )
        return PipelineRef(
            name=name,
            display_name=display,
            pipeline_id=pipeline_id,
            pipeline_version_id=version.pipeline_version_id,
            version_name=version_name,
            uploaded=True,
        )


def _experiment_id(client: Any, host: str, experiment: str, namespace: str | None) -> str:
    with _server_errors(host, f"create experiment {experiment}"):
        return str(client.create_experiment(name=experiment, namespace=namespace).experiment_id)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def _prepare(
    name: str, host: str, experiment: str, namespace: str | None, token: str | None
) -> tuple[Any, PipelineRef, str]:
    """What a run and a recurring run both need: the uploaded version and the experiment."""
    package = _committed_package(name)
    client = connect(host, namespace=namespace, token=token)
    ref = upload(client, host, name, package)
    return client, ref, _experiment_id(client, host, experiment, namespace)


def submit(
    name: str,
    host: str,
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    params: dict[str, Any] | None = None,
    namespace: str | None = None,
    token: str | None = None,
) -> SubmitResult:
    """Upload the committed YAML of pipeline `name` and start one run of it."""
    client, ref, experiment_id = _prepare(name, host, experiment, namespace, token)
    run_name = run_name or f"{name}-{_stamp()}"
    with _server_errors(host, f"create run {run_name}"):
        run = client.run_pipeline(
            experiment_id=experiment_id,
            job_name=run_name,
            params=params or {},
            pipeline_id=ref.pipeline_id,
            version_id=ref.pipeline_version_id,
        )
    return SubmitResult(
        host=host,
        pipeline=ref,
        experiment=experiment,
        experiment_id=experiment_id,
        run_id=str(run.run_id),
        run_name=run_name,
        url=f"{host.rstrip('/')}/#/runs/details/{run.run_id}",
    )


def schedule(
    name: str,
    host: str,
    *,
    cron: str,
    experiment: str = DEFAULT_EXPERIMENT,
    job_name: str | None = None,
    params: dict[str, Any] | None = None,
    namespace: str | None = None,
    token: str | None = None,
    max_concurrency: int = 1,
) -> ScheduleResult:
    """Create a recurring run of pipeline `name` on a cron schedule (5 or 6 fields accepted).

    Catch-up is off: a monitoring run that was missed while paused is replaced by the next one,
    not replayed (each run already looks at the most recent window).
    """
    kfp_cron = to_kfp_cron(cron)  # bad cron fails before anything touches the server
    if max_concurrency < 1:
        raise BadInputError("--max-concurrency must be at least 1")
    client, ref, experiment_id = _prepare(name, host, experiment, namespace, token)
    job_name = job_name or f"{name}-scheduled"
    with _server_errors(host, f"create recurring run {job_name}"):
        job = client.create_recurring_run(
            experiment_id=experiment_id,
            job_name=job_name,
            description=f"mlgate {name} on cron '{kfp_cron}' (from '{cron}')",
            cron_expression=kfp_cron,
            max_concurrency=max_concurrency,
            no_catchup=True,
            params=params or {},
            pipeline_id=ref.pipeline_id,
            version_id=ref.pipeline_version_id,
        )
    return ScheduleResult(
        host=host,
        pipeline=ref,
        experiment=experiment,
        experiment_id=experiment_id,
        recurring_run_id=str(job.recurring_run_id),
        recurring_run_name=job_name,
        cron=kfp_cron,
        cron_input=cron,
        url=f"{host.rstrip('/')}/#/recurringrun/details/{job.recurring_run_id}",
    )
