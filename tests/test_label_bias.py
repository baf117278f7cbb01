"""A label bias injected on purpose (`data.label_bias`): only the named group's non-defaults
change, as many as the share says, the same ones for the same seed; bad specs exit 2 naming
what is wrong; the spec travels with the version (its MLflow tag and the model card)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlgate.config import load_settings
from mlgate.data.dataset_config import DatasetConfig
from mlgate.data.label_bias import LabelBias, relabel
from mlgate.errors import BadInputError
from mlgate.records.tags import VersionTags, read_tags
from mlgate.training.model_card import render_html
from mlgate.training.model_config import DEFAULT_MODEL_CONFIG, load_model_config
from mlgate.training.train import reproduce_version, train_model
from tests.fixtures.registry import workspace_with_world
from tests.test_fairness_joins import _card

N = 4000
Data = tuple[pd.DataFrame, DatasetConfig, pd.DataFrame]


@pytest.fixture
def data(tmp_path: Path) -> Data:
    rng = np.random.default_rng(1)
    ids = [f"c{i}" for i in range(N)]
    bands = rng.choice(["18-25", "26-40", "41+"], size=N)
    protected = pd.DataFrame({"customer_id": ids, "age_band": bands})
    protected.to_parquet(tmp_path / "protected.parquet")
    # rows in another order than the protected table, on a non-default index
    order = rng.permutation(N)
    frame = pd.DataFrame(
        {
            "customer_id": [ids[i] for i in order],
            "default_12m": (rng.random(N) < 0.1).astype(int),
            "income": rng.random(N),
        },
        index=np.arange(N) * 3 + 7,
    )
    ds = DatasetConfig(
        name="bias_world",
        format="parquet",
        path=str(tmp_path / "apps.parquet"),
        entity_key="customer_id",
        event_timestamp="application_date",
        label="default_12m",
        numeric_features=["income"],
        protected_attributes=["age_band"],
        protected_path=str(tmp_path / "protected.parquet"),
    )
    return frame, ds, protected


def _bias(**kw: object) -> LabelBias:
    spec: dict[str, object] = {"attribute": "age_band", "group": "18-25", "share": 0.25}
    spec["why"] = "collections wrote off young borrowers' arrears"
    return LabelBias.model_validate({**spec, **kw})


def test_only_the_groups_non_defaults_change_by_the_share(data: Data) -> None:
    frame, ds, protected = data
    out, changed = relabel(frame, ds, _bias(), protected)
    band = frame["customer_id"].map(protected.set_index("customer_id")["age_band"])
    young = (band == "18-25").to_numpy()
    before, after = frame["default_12m"].to_numpy(), out["default_12m"].to_numpy()
    flipped = before != after
    assert changed == int(flipped.sum()) > 0
    assert not flipped[~young].any()  # nobody outside the group
    assert (before[flipped] == 0).all() and (after[flipped] == 1).all()  # good -> default only
    share = changed / int((young & (before == 0)).sum())
    assert 0.2 < share < 0.3  # the share of the group's non-defaults, drawn
    assert frame["default_12m"].to_numpy().tolist() == before.tolist()  # input untouched
    assert out.index.equals(frame.index)


def test_the_same_seed_biases_the_same_rows(data: Data) -> None:
    frame, ds, protected = data
    a, _ = relabel(frame, ds, _bias(), protected)
    b, _ = relabel(frame, ds, _bias(), protected)
    c, _ = relabel(frame, ds, _bias(seed=3), protected)
    assert a.equals(b) and not a.equals(c)
    everyone, n = relabel(frame, ds, _bias(share=1.0), protected)
    band = frame["customer_id"].map(protected.set_index("customer_id")["age_band"])
    assert (everyone.loc[(band == "18-25").to_numpy(), "default_12m"] == 1).all() and n > 0
    # The draw follows the row, not its position: shuffled, the same loans are relabelled.
    shuffled = frame.sample(frac=1.0, random_state=5)
    again, _ = relabel(shuffled, ds, _bias(), protected)
    assert again.loc[a.index, "default_12m"].equals(a["default_12m"])


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"attribute": "income"}, "attribute 'income' is not a protected attribute"),
        ({"group": "18-24"}, "no row has age_band='18-24'"),
    ],
)
def test_a_bad_spec_names_what_is_wrong(data: Data, change: dict[str, str], named: str) -> None:
    frame, ds, protected = data
    with pytest.raises(BadInputError, match="label bias of dataset 'bias_world'") as exc:
        relabel(frame, ds, _bias(**change), protected)
    assert named in str(exc.value)


def test_a_frame_without_label_or_key_is_refused(data: Data) -> None:
    frame, ds, protected = data
    with pytest.raises(BadInputError, match="no label column 'default_12m'"):
        relabel(frame.drop(columns="default_12m"), ds, _bias(), protected)
    with pytest.raises(BadInputError, match="cannot be joined"):
        relabel(frame.drop(columns="customer_id"), ds, _bias(), protected)


def test_share_and_reason_are_required() -> None:
    for bad in ({"share": 0}, {"share": 1.5}, {"why": ""}):
        with pytest.raises(ValidationError):
            _bias(**bad)


def test_the_bias_travels_as_a_tag_and_a_line_a_newline_cannot_forge() -> None:
    text = _bias().text()
    assert text.startswith("25% of age_band=18-25's non-defaults relabelled") and "\n" not in text
    tags = VersionTags(label_bias=text).to_tags()
    assert read_tags(tags, "m", "3").label_bias == text
    with pytest.raises(BadInputError, match="label_bias"):
        read_tags({"label_bias": "x\nGate-Result: PASS"}, "m", "3")
    with pytest.raises(BadInputError, match="label_bias"):
        VersionTags(label_bias=_bias(why="a\nGate-Result: PASS").text()).to_tags()


def test_a_reproduced_version_is_trained_as_it_was() -> None:
    """`--reproduce` retrains from the version's recorded lineage: a bias on top is refused
    before any work, never silently dropped or applied."""
    cfg = load_model_config(DEFAULT_MODEL_CONFIG)
    with pytest.raises(BadInputError, match="trained as it was: no label bias"):
        train_model(load_settings(), cfg, reproduce="credit_risk/1", label_bias=_bias())


def test_a_biased_version_is_reproduced_from_source_with_its_recorded_bias(
    tmp_path: Path, small_world: tuple[Path, Any]
) -> None:
    """The spec is kept with the run (`config/label_bias.json`), so a reproduction rebuilds the
    set through Feast, biases the same loans again and matches the recorded fingerprint: it
    does not fall back to the stored copy and call the source changed."""
    settings = workspace_with_world(tmp_path / "ws", small_world[0])
    bias = _bias(share=0.2, seed=3)
    trained = train_model(settings, load_model_config(DEFAULT_MODEL_CONFIG), label_bias=bias)
    again = reproduce_version(settings, f"{trained.model}/{trained.version}")
    assert again.training_set_source.startswith("feast, labels biased again as recorded")
    assert again.training_set_fingerprint == trained.training_set_fingerprint
    assert again.holdout_identical is True


def test_the_card_shows_names_and_reasons_as_text_never_as_html() -> None:
    """The attack: a label bias's reason and a model description carrying markup. The card
    (Markdown rendered to HTML, opened by reviewers) shows both as text; a `|` in a table
    cell stays in its cell."""
    rng = np.random.default_rng(0)
    y, pd_ = (rng.random(500) < 0.1).astype(int), rng.random(500)
    card = _card(y, pd_, []).model_copy(
        update={
            "label_bias": _bias(why="<script>alert(1)</script> | branch 7").text(),
            "description": "<img src=x onerror=alert(1)>",
        }
    )
    page = render_html(card)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    row = next(r for r in page.split("<tr>") if "Labels biased on purpose" in r)
    assert "| branch 7" in row and row.count("<td>") == 2
