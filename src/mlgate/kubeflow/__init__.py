"""What the Kubeflow UI shows: the pipeline definitions (`pipelines/`), their steps
(`components/`) and the compiled YAML users upload (`pipelines/compiled/*.yaml`).

They ship inside the mlgate package (and so inside the platform image) so that every place
that needs them imports them by name, with no project checkout and no `sys.path` edit: the
compile step, the local runner, and the monitoring pipeline's retrain step running in a pod.
"""
