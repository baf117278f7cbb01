"""The training pipeline: data -> validate -> training set -> train -> evaluate -> gates ->
(all PASS) image -> promotion PR to the target environment.

The gates run as parallel tasks, one per gate, each with its own verdict and metrics. The
decision step adds them up under the policy; only when every gate passes does the run build
the model-server image and open the promotion pull request. Otherwise the run ends there,
green but blocked, and its output is the gate report saying why. A step that crashes (bad
data, an unreachable server) fails the run instead. Caching is off for every step: each run
re-reads the data and registers a new version, which a cache hit would silently skip.
"""

from kfp import dsl
from kfp.dsl import HTML

from mlgate.gates import registry
from mlgate.kubeflow.components.data import prepare_data, validate_data
from mlgate.kubeflow.components.features import build_training_set
from mlgate.kubeflow.components.gates import decide, run_gate
from mlgate.kubeflow.components.release import build_image, open_promotion
from mlgate.kubeflow.components.training import evaluate_model, train_model
from mlgate.pipelines.platform import BUILD_POOL, on_pool, with_git, with_mlflow, with_registry


@dsl.pipeline(
    name="mlgate-training",
    description="Train, gate and (if every gate passes) package and propose a credit-risk model.",
)
def training(
    model_config: str = "config/models/credit_risk.yaml",
    policy: str = "config/policies/credit_risk.yaml",
    env: str = "dev",
    world_applications: int = 0,
    data_source: str = "",
    image_build: str = "buildah",
) -> HTML:
    data = prepare_data(
        model_config=model_config, world_applications=world_applications, data_source=data_source
    )
    data.set_display_name("data").set_caching_options(False)
    valid = validate_data(model_config=model_config, data=data.outputs["data"])
    valid.set_display_name("validate data").set_caching_options(False)
    tset = build_training_set(model_config=model_config, data=data.outputs["data"])
    tset.set_display_name("training set (Feast)").after(valid).set_caching_options(False)

    train = train_model(
        model_config=model_config,
        data_fingerprint=data.outputs["Output"],
        data=data.outputs["data"],
        training_set=tset.outputs["training_set"],
    )
    train.set_display_name("train + register").set_caching_options(False)
    on_pool(with_mlflow(train))

    evaluation = evaluate_model(
        model_config=model_config,
        policy=policy,
        model_version=train.outputs["model_version"],
        env=env,
        data=data.outputs["data"],
        model=train.outputs["model"],
    )
    evaluation.set_display_name("evaluate (challenger vs champion)").set_caching_options(False)
    on_pool(with_git(with_mlflow(evaluation)))  # git: the champion, read as the CLI reads it

    # One task per registered gate (mlgate.gates.registry): a new gate module adds its task.
    with dsl.ParallelFor(items=list(registry.names()), name="gates") as gate:
        task = run_gate(
            gate=gate, policy=policy, env=env, gate_inputs=evaluation.outputs["gate_inputs"]
        )
        task.set_display_name("gate").set_caching_options(False)

    decision = decide(
        policy=policy,
        env=env,
        model_version=train.outputs["model_version"],
        gate_inputs=evaluation.outputs["gate_inputs"],
        results=dsl.Collected(task.outputs["result"]),
    )
    decision.set_display_name("gate decision").set_caching_options(False)

    with dsl.If(decision.outputs["Output"] == "PASS", name="all-gates-pass"):
        image = build_image(
            model_name=train.outputs["model_name"],
            model_version=train.outputs["model_version"],
            image_build=image_build,
        )
        image.set_display_name("model-server image").set_caching_options(False)
        on_pool(with_registry(with_mlflow(image)), BUILD_POOL)
        promotion = open_promotion(
            model_name=train.outputs["model_name"],
            model_version=train.outputs["model_version"],
            env=env,
            image_ref=image.outputs["Output"],
            report_files=decision.outputs["report_files"],
        )
        promotion.set_display_name("promotion PR").set_caching_options(False)
        with_git(with_mlflow(promotion))

    return decision.outputs["report"]


PIPELINE = training
