"""KFP pipelines, one module per pipeline: `mlgate.kubeflow.pipelines.<name>` defines `PIPELINE`.

`mlgate pipeline compile` writes `compiled/<name>.yaml` next to them (committed, shipped as
package data: upload it in the Kubeflow UI; `submit` sends it), `mlgate pipeline run NAME
--local` runs it on this machine (`mlgate.pipelines.catalog` finds them).
"""
