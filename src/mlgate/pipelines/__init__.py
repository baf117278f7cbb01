"""Kubeflow pipelines: compile for the Kubeflow UI, run locally, submit and schedule.

The pipeline definitions live in the project's top-level `pipelines/` package and their steps in
`components/` (KFP v2 lightweight Python components, each a thin wrapper around one `mlgate`
function). This package is the library side: it finds and imports those definitions
(`catalog`), compiles them and checks the committed YAML (`compiling`), runs them with KFP's
local runner (`local`), converts cron expressions (`cron`) and talks to a Kubeflow Pipelines
API server through `kfp.Client` (`remote`). `steps` holds the functions the components call.
"""
