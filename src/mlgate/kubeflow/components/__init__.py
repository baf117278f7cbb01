"""KFP v2 lightweight Python components: the steps the Kubeflow UI shows.

Each component is a thin wrapper that calls ONE function of its stage's module in
`mlgate.pipelines.steps` (`components/data.py` -> `steps/data.py`, ...; which in turn calls the
capability's library: data, features, training, gates, packaging, gitops) and
moves typed artifacts (Dataset, Model, Metrics, HTML) between steps. Kubeflow executes a
lightweight component from its function source alone, so every import sits inside the
function body; the platform image (`mlgate.pipelines.platform.platform_image()`, env
`MLGATE_PLATFORM_IMAGE`) provides mlgate and kfp, hence `install_kfp_package=False`.

Don't add `from __future__ import annotations` here: kfp reads the annotations at decoration
time to type the component's inputs and outputs.
"""
