"""The functions the pipeline components call: artifacts (files) in, library calls, files out.

A Kubeflow component only sees paths and plain parameters, and runs in its own pod with its
own empty filesystem (locally: a subprocess with its own empty workspace, removed when it
ends, `mlgate.pipelines.local`). So each step here loads the platform settings from the
environment, reads its inputs from artifact paths and the configured services (MLflow, the
OCI registry, the git remote, the feature store), calls the capability's library (data,
features, training, gates, packaging, gitops) and writes its outputs to artifact paths; nothing
it leaves in its workspace is seen by another step. The dataset travels as the `data` Dataset
artifact (the world's files), the training set as a Dataset, the model as MLflow's version
(the Model artifact names it), the gate evidence as a Dataset, the image as MLflow tags.

Each step returns a StepOutput: the component's return value, the metrics it logs (shown on
the step in the Kubeflow UI) and metadata attached to its output artifact.

One module per stage (`data`, `features`, `training`, `gates`, `release`,
`monitoring`), the shared helpers in `common`; a component imports its stage module.
"""
