"""KFP pipelines, one module per pipeline: `pipelines/<name>.py` defines `PIPELINE`.

`mlgate pipeline compile` writes `pipelines/compiled/<name>.yaml` (committed: upload it in the
Kubeflow UI), `mlgate pipeline run NAME --local` runs it on this machine. This folder and
`components/` are importable packages found from the project root (see
`mlgate.pipelines.catalog`).
"""
