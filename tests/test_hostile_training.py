"""Careless training inputs (issue 15 item 9): each is a ConfigError naming what differs,
raised before the first step (the model's weights are untouched), and NaN test images are
reported instead of being averaged into an accuracy."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genbench.data import ArrayDataset
from genbench.errors import ConfigError
from genbench.training import TrainConfig, fit, fit_many

CONFIG = TrainConfig(lr=0.05, batch_size=16, max_epochs=1)


def data(n: int = 32, classes: int = 10, shape=(3, 8, 8), name: str = "toy") -> ArrayDataset:
    g = torch.Generator().manual_seed(n)
    return ArrayDataset(torch.randn(n, *shape, generator=g),
                        torch.randint(0, classes, (n,), generator=g), classes, name)


def mlp(outputs: int = 10, inputs: int = 192, hidden: int = 16, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(inputs, hidden), nn.ReLU(),
                         nn.Linear(hidden, outputs))


def untouched(model: nn.Module):
    """A context that asserts the model's weights did not change (no step was taken)."""
    before = {k: v.clone() for k, v in model.state_dict().items()}

    class Check:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
            return False
    return Check()


def test_empty_training_or_test_set():
    model = mlp()
    with untouched(model), pytest.raises(ConfigError, match="training set 'empty' is empty"):
        fit(model, data(0, name="empty"), CONFIG)
    with untouched(model), pytest.raises(ConfigError, match="test set 'none' is empty"):
        fit(model, data(), CONFIG, data(0, name="none"))


def test_labels_outside_the_model_classes():
    model = mlp(outputs=5)
    with untouched(model), pytest.raises(ConfigError) as err:
        fit(model, data(classes=10), CONFIG)
    assert "has 5 outputs" in str(err.value) and "training set 'toy'" in str(err.value)
    with pytest.raises(ConfigError, match="labels hold values"):
        fit(mlp(), data(), CONFIG, labels=torch.full((32,), 12))
    with pytest.raises(ConfigError, match="labels hold values in \\[-1"):
        fit_many([mlp(), mlp(seed=1)], data(), CONFIG,
                 labels=torch.full((2, 32), -1))


def test_float_or_bool_labels_are_refused_not_truncated():
    ds = data()
    floats = torch.utils.data.TensorDataset(ds.x, ds.y.float() + 0.5)
    with pytest.raises(ConfigError, match="torch.float32; labels must be integer"):
        fit(mlp(), floats, CONFIG)
    with pytest.raises(ConfigError, match="labels are torch.float"):
        fit(mlp(), ds, CONFIG, labels=ds.y.double())
    with pytest.raises(ConfigError, match="torch.bool"):
        fit(mlp(), ds, CONFIG, labels=ds.y > 4)


def test_input_shapes_that_do_not_match_the_model_or_each_other():
    model = mlp(inputs=192)
    with untouched(model), pytest.raises(ConfigError) as err:
        fit(model, data(shape=(1, 28, 28), name="mnistlike"), CONFIG)
    assert "does not accept images of shape (1, 28, 28) from 'mnistlike'" in str(err.value)
    with pytest.raises(ConfigError, match=r"training images are \(3, 8, 8\) but test images "
                                          r"are \(3, 9, 8\)"):
        fit(mlp(), data(), CONFIG, data(shape=(3, 9, 8)))


def test_fit_many_over_two_architectures_names_the_difference():
    models = [mlp(hidden=16), mlp(hidden=32, seed=1)]
    with untouched(models[0]), pytest.raises(ConfigError) as err:
        fit_many(models, data(), CONFIG)
    assert "model 1 is not the architecture of model 0" in str(err.value)
    assert "'1.weight' has shape (32, 192) in it, (16, 192) in model 0" in str(err.value)
    with pytest.raises(ConfigError, match="model 1 is a"):
        fit_many([mlp(), nn.Flatten()], data(), CONFIG)
    with pytest.raises(ConfigError, match="it has '0.bias'|lacks"):
        fit_many([mlp(), nn.Sequential(nn.Flatten(), nn.Linear(192, 16, bias=False),
                                       nn.ReLU(), nn.Linear(16, 10))], data(), CONFIG)


def test_nan_in_test_images_is_reported_not_averaged():
    test = data(16, name="nan-test")
    x = test.x.clone()
    x[3, 0, 0, 0] = float("nan")
    x[7] = float("inf")
    with pytest.raises(ConfigError) as err:
        fit(mlp(), data(), CONFIG, test.with_x(x))
    assert "2 test images of 'nan-test' hold NaN or inf" in str(err.value)
    assert "index 3" in str(err.value)


def test_seed_outside_int64_is_refused():
    with pytest.raises(ConfigError, match=r"seeds\[1\]=9223372036854775808"):
        fit_many([mlp(), mlp(seed=1)], data(), CONFIG, seeds=[0, 2 ** 63])


def test_the_check_leaves_training_flags_and_rng_alone():
    model = mlp()
    model[1].eval()  # a deliberately mixed state must survive the probe forward pass
    state = torch.random.get_rng_state()
    from genbench.training.checks import check_inputs

    check_inputs([model], data(), data(8))
    assert model.training and not model[1].training and model[3].training
    assert torch.equal(state, torch.random.get_rng_state())


def test_clean_inputs_still_train():
    result = fit(mlp(), data(), CONFIG, data(16))
    assert result.epochs == 1 and 0.0 <= result.final["test_acc"] <= 1.0


class PlainTensorOffset(nn.Module):
    """Holds a tensor outside parameters and buffers: the meta-device probe cannot run it, so
    the check falls back to one real forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.net = mlp()
        self.offset = torch.ones(1)

    def forward(self, x):
        return self.net(x) + self.offset


def test_models_the_meta_probe_cannot_run_are_checked_by_a_real_forward():
    from genbench.training.checks import check_inputs

    check_inputs([PlainTensorOffset()], data())
    with pytest.raises(ConfigError, match="has 10 outputs"):
        check_inputs([PlainTensorOffset()], data(classes=12))
    with pytest.raises(ConfigError, match="does not accept images of shape"):
        check_inputs([PlainTensorOffset()], data(shape=(1, 5, 5)))


def test_the_probe_runs_no_caller_hooks():
    from genbench.training.checks import check_inputs

    calls = []
    model = mlp()
    model.register_forward_hook(lambda *a: calls.append("model"))
    model[1].register_forward_pre_hook(lambda *a: calls.append("layer"))
    check_inputs([model], data())
    assert calls == []
    model(data().x[:1])
    assert calls == ["layer", "model"]  # and the hooks are back in place
