"""Configuration fields under careless values (issue 15 item 8): every field of TrainConfig,
Augment, Corruption and DataSpec is checked for type and range at construction, and a bad
value is a ConfigError naming the field, never another exception and never accepted wrongly.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genbench.errors import ConfigError
from genbench.experiment import Corruption, DataSpec
from genbench.training import TrainConfig
from genbench.training.config import Augment
from genbench.validate import check_field_types

# Anything a careless user (or a JSON file) may put in a field.
ANY_VALUE = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["sgd", "adam", "auto", "fp32", "bf16", "epochs",
                                          "loss", "train_acc", "none", "random_labels",
                                          "fixture", "full", "mnist", "unit", "zhang", "on"]),
    st.lists(st.integers(0, 3), max_size=2), st.just(np.float64(0.5)), st.just(np.int64(3)),
)


def build(cls, field_name, value):
    if cls is DataSpec:
        kwargs = {"dataset": "mnist", field_name: value}
        return DataSpec(**kwargs)
    return cls(**{field_name: value})


CLASSES = {TrainConfig: "TrainConfig", Augment: "TrainConfig.augment",
           Corruption: "Corruption", DataSpec: "DataSpec"}
FIELDS = [(cls, f.name) for cls in CLASSES for f in dataclasses.fields(cls)]


@pytest.mark.parametrize("cls, field_name", FIELDS, ids=[f"{c.__name__}.{n}" for c, n in FIELDS])
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(value=ANY_VALUE)
def test_any_value_is_accepted_with_its_type_or_refused_naming_the_field(cls, field_name, value):
    try:
        obj = build(cls, field_name, value)
    except ConfigError as err:
        assert field_name in str(err) or (cls is TrainConfig and "stop_target" in str(err))
        return
    check_field_types(obj)  # whatever was accepted has its annotated type
    accepted = getattr(obj, field_name)
    if isinstance(accepted, float):
        assert math.isfinite(accepted)
    if field_name in ("seed", "subset_seed", "batch_size", "max_epochs", "eval_every"):
        assert isinstance(accepted, int) and 0 <= accepted < 2 ** 63


@pytest.mark.parametrize("kwargs, field", [
    (dict(lr="0.1"), "lr"), (dict(lr=None), "lr"), (dict(lr=True), "lr"),
    (dict(lr=10 ** 400), "lr"), (dict(lr=1e39), "lr"), (dict(lr=math.nan), "lr"),
    (dict(seed=2 ** 63), "seed"), (dict(seed=-1), "seed"), (dict(seed=1.0), "seed"),
    (dict(batch_size=True), "batch_size"), (dict(batch_size=64.0), "batch_size"),
    (dict(max_epochs="10"), "max_epochs"), (dict(keep_weights=1), "keep_weights"),
    (dict(confirm_fit="yes"), "confirm_fit"), (dict(momentum="0.9"), "momentum"),
    (dict(weight_decay=math.inf), "weight_decay"), (dict(optimizer="SGD"), "optimizer"),
    (dict(precision=None), "precision"), (dict(stop="loss", stop_target="0.1"), "stop_target"),
    (dict(augment={"hflip": True}), "augment"),
])
def test_train_config_bad_values_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"TrainConfig\.{field}="):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("kwargs, field", [
    (dict(hflip=1), "hflip"), (dict(crop_padding=2.0), "crop_padding"),
    (dict(crop_padding=True), "crop_padding"), (dict(rotate_degrees="25"), "rotate_degrees"),
    (dict(rotate_degrees=math.nan), "rotate_degrees"),
])
def test_augment_bad_values_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"augment\.{field}="):
        Augment(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_train=5000), r"DataSpec\.n_train=5,000 is more than the 4,000 images"),
    (dict(source="full", n_test=20_000), r"n_test=20,000 is more than the 10,000"),
    (dict(n_train=True), r"DataSpec\.n_train=True"), (dict(n_train=100.0), r"DataSpec\.n_train"),
    (dict(subset_seed=-1), r"DataSpec\.subset_seed"), (dict(subset_seed=None), r"subset_seed"),
    (dict(preprocess=None), r"DataSpec\.preprocess"),
])
def test_data_spec_bad_values_name_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        DataSpec("mnist", **kwargs)
    with pytest.raises(ConfigError, match=r"DataSpec\.dataset='MNIST'"):
        DataSpec("MNIST")


@pytest.mark.parametrize("kwargs, field", [
    (dict(p="1"), "p"), (dict(p=True), "p"), (dict(p=math.nan), "p"), (dict(p=1.5), "p"),
    (dict(seed=2 ** 64), "seed"), (dict(seed=-3), "seed"), (dict(kind=None), "kind"),
])
def test_corruption_bad_values_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=rf"Corruption\.{field}="):
        Corruption(**kwargs)


def test_numpy_floats_are_numbers_numpy_ints_are_named():
    assert TrainConfig(lr=np.float64(0.1)).lr == 0.1  # a float subclass
    with pytest.raises(ConfigError, match=r"TrainConfig\.batch_size=.*int\(\)"):
        TrainConfig(batch_size=np.int64(32))


def test_train_config_from_dict_names_an_unknown_key():
    data = TrainConfig().to_dict() | {"learning_rate": 0.1}
    with pytest.raises(ConfigError, match="TrainConfig.learning_rate"):
        TrainConfig.from_dict(data)
