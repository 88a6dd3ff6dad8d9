"""genbench.models: Table 1 counts, shapes, seeding, init, validation, torch.func use."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from genbench.errors import ConfigError
from genbench.models import build, count_params, list_models, model_spec
from genbench.models.layers import ChannelOffset

SMALL = [name for name in list_models() if name != "inception_v3"]
SHAPES = [(name, shape) for name in SMALL for shape in model_spec(name).in_shapes]


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_list_models_names_every_architecture() -> None:
    assert list_models() == [
        "mlp_1x512", "mlp_3x512", "alexnet_small", "inception_small", "inception_small_nobn",
        "inception_v3", "eo_mlp", "eo_cnn", "eo_resnet", "c_cnn", "c_mlp", "c_lenet",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mlp_1x512", 1_209_866),
        ("mlp_3x512", 1_735_178),
        ("alexnet_small", 1_387_786),
        ("inception_small", 1_649_402),
        ("inception_small_nobn", 1_649_402),
    ],
)
def test_zhang_table1_parameter_counts(name: str, expected: int) -> None:
    assert count_params(build(name, (3, 28, 28), 10)) == expected


def test_paper_parameter_counts_at_typical_inputs() -> None:
    """Counts that follow from the papers' layer lists (c_cnn: Keras MNIST network)."""
    assert count_params(build("eo_mlp", (1, 28, 28), 10)) == 784 * 512 + 512 + 512 * 10 + 10
    conv, fc1, fc2 = 9 * 32 + 32, 13 * 13 * 32 * 128 + 128, 128 * 10 + 10
    assert count_params(build("c_cnn", (1, 28, 28), 10)) == conv + fc1 + fc2


@pytest.mark.parametrize(("name", "shape"), SHAPES)
def test_forward_gives_logits_for_each_paper_input(name: str, shape: tuple[int, ...]) -> None:
    model = build(name, shape, 7)
    x = torch.randn(2, *shape)
    assert model(x).shape == (2, 7)  # train mode (batch norm over a batch of 2)
    out = model.eval()(x)
    assert out.shape == (2, 7) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_inception_v3_is_torchvisions_without_aux_head() -> None:
    model = build("inception_v3", (3, 299, 299), 1000)
    assert count_params(model) == 23_834_568  # Inception V3 without its auxiliary classifier
    assert model.AuxLogits is None
    with torch.no_grad():  # the smallest input it accepts keeps the one forward pass cheap
        assert model.eval()(torch.randn(1, 3, 75, 75)).shape == (1, 1000)


@pytest.mark.parametrize("name", SMALL)
def test_seed_fixes_the_initial_weights(name: str) -> None:
    shape = model_spec(name).in_shapes[0]
    first = _weights(build(name, shape, 10, seed=3))
    again = _weights(build(name, shape, 10, seed=3))
    other = _weights(build(name, shape, 10, seed=4))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_build_leaves_the_global_rng_alone() -> None:
    torch.manual_seed(123)
    expected = torch.rand(5)
    torch.manual_seed(123)
    build("eo_resnet", (1, 28, 28), 10, seed=7, init="xavier_uniform")
    assert torch.equal(torch.rand(5), expected)


@pytest.mark.parametrize("name", SMALL)
def test_xavier_uniform_init(name: str) -> None:
    shape = model_spec(name).in_shapes[0]
    model = build(name, shape, 10, init="xavier_uniform")
    layers = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert layers
    for layer in layers:
        fan_in = layer.weight[0].numel()
        fan_out = layer.weight.shape[0] * layer.weight[0, 0].numel()
        bound = math.sqrt(6 / (fan_in + fan_out))
        w = layer.weight.detach().abs()
        assert w.max() <= bound and (w.numel() < 50 or w.max() > 0.8 * bound)
        assert layer.bias is None or not layer.bias.any()
    offsets = [m.bias for m in model.modules() if isinstance(m, ChannelOffset)]
    assert not any(bias.any() for bias in offsets)


def test_xavier_init_differs_from_default_and_is_seeded() -> None:
    default = _weights(build("eo_cnn", (1, 28, 28), 10, seed=1))
    xavier = _weights(build("eo_cnn", (1, 28, 28), 10, seed=1, init="xavier_uniform"))
    again = _weights(build("eo_cnn", (1, 28, 28), 10, seed=1, init="xavier_uniform"))
    assert not torch.equal(default["0.weight"], xavier["0.weight"])
    assert all(torch.equal(xavier[k], again[k]) for k in xavier)


@pytest.mark.parametrize(("name", "shape"), SHAPES)
def test_functional_call_and_vmap_over_stacked_models(name: str, shape: tuple[int, ...]) -> None:
    """The engine trains K models at once with torch.func; every small model must allow it."""
    models = [build(name, shape, 10, seed=s).eval() for s in (0, 1)]
    x = torch.randn(2, *shape)
    with torch.no_grad():
        state = dict(models[0].state_dict())
        assert torch.equal(functional_call(models[0], state, (x,)), models[0](x))
        params, buffers = stack_module_state(models)
        stacked = vmap(lambda p, b: functional_call(models[0], (p, b), (x,)))(params, buffers)
        for k, model in enumerate(models):
            torch.testing.assert_close(stacked[k], model(x), rtol=1e-4, atol=1e-5)


def test_dropout_options_reach_the_layers() -> None:
    for name in ("c_cnn", "c_mlp", "c_lenet"):
        assert dict(model_spec(name).options) == {"dropout1": 0.25, "dropout2": 0.5}
        model = build(name, (1, 16, 16), 10, dropout1=0.1, dropout2=0.0)
        assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.1, 0.0]


def test_resnet_blocks_option() -> None:
    one = build("eo_resnet", (1, 28, 28), 10, blocks=1)
    assert count_params(one) < count_params(build("eo_resnet", (1, 28, 28), 10))


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("resnet50", (3, 32, 32), 10), {}, "name='resnet50'"),
        (("c_cnn", (1, 28, 28), 10), {"dropout3": 0.1}, "dropout3"),
        (("mlp_1x512", (3, 28, 28), 10), {"dropout1": 0.1}, "dropout1"),
        (("c_cnn", (1, 28, 28), 10), {"dropout1": 1.0}, "dropout1=1.0"),
        (("c_mlp", (1, 28, 28), 10), {"dropout2": -0.1}, "dropout2=-0.1"),
        (("eo_resnet", (1, 28, 28), 10), {"blocks": 0}, "blocks=0"),
        (("eo_cnn", (1, 28, 28), 10), {"init": "kaiming"}, "init='kaiming'"),
        (("eo_cnn", (1, 28, 28), 10), {"seed": -1}, "seed=-1"),
        (("eo_cnn", (1, 28, 28), 10), {"seed": True}, "seed=True"),
        (("eo_cnn", (1, 28, 28), 0), {}, "num_classes=0"),
        (("eo_cnn", (28, 28), 10), {}, "in_shape=(28, 28)"),
        (("eo_cnn", (1, 0, 28), 10), {}, "in_shape=(1, 0, 28)"),
        (("eo_cnn", (1, 3, 3), 10), {}, "in_shape=(1, 3, 3) is too small"),
        (("c_cnn", (1, 2, 2), 10), {}, "in_shape=(1, 2, 2) is too small"),
        (("inception_v3", (3, 32, 32), 10), {}, "in_shape=(3, 32, 32) is too small"),
    ],
)
def test_bad_arguments_raise_config_error_naming_the_field(
    args: tuple, kwargs: dict, field: str
) -> None:
    with pytest.raises(ConfigError, match="allowed|must be|too small") as err:
        build(*args, **kwargs)
    assert field in str(err.value)


@settings(max_examples=20, deadline=None)
@given(
    name=st.sampled_from(["eo_cnn", "c_cnn", "c_lenet", "alexnet_small", "eo_resnet"]),
    channels=st.sampled_from([1, 3]),
    height=st.integers(1, 36),
    width=st.integers(1, 36),
)
def test_a_model_that_builds_runs_on_its_in_shape(
    name: str, channels: int, height: int, width: int
) -> None:
    """Either build rejects an in_shape with ConfigError, or a forward pass on it works."""
    shape = (channels, height, width)
    try:
        model = build(name, shape, 3)
    except ConfigError:
        return
    assert model.eval()(torch.randn(2, *shape)).shape == (2, 3)
