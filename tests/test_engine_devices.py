"""The engine's GPU path, tested on every available device (cpu always, cuda when present,
in the manner of PyTorch's device-type tests) and through the CPU proxies torch offers:
bf16 autocast, torch.compile, vmap with BatchNorm and dropout, resume across devices, the
torchrun device mapping. Each test names the fix of issue #13 it guards."""

from __future__ import annotations

import dataclasses
import io
from collections import Counter

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from genbench.errors import ConfigError
from genbench.models.layers import ChannelOffset
from genbench.training import Augment, TrainConfig, fit, fit_many
from genbench.training import checkpoint as ckpt
from genbench.training import engine
from genbench.training.checkpoint import CheckpointError
from genbench.training.config import lr_at
from genbench.training.runtime import Runtime
from genbench.training.sources import EVAL_BATCH, ResidentSource
from genbench.training.trainee import StackedTrainee
from tests.test_engine import Tensors, mlp, numbers, toy_data

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def dev(request) -> torch.device:
    return Runtime.from_env(request.param).device


def on(data: Tensors, device: torch.device) -> Tensors:
    return dataclasses.replace(data, x=data.x.to(device), y=data.y.to(device))


def bn_net(seed: int) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                             nn.Linear(144, 10))


QUICK = TrainConfig(lr=0.05, batch_size=64, max_epochs=3, precision="fp32")


class OpCounter(TorchDispatchMode):
    """Counts aten ops as they are launched."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if name == "aten.index.Tensor" and any(
                isinstance(t, torch.Tensor) and t.dtype == torch.bool for t in args[1]
                if t is not None):
            name = "bool-mask index"
        self.ops[name] += 1
        return func(*args, **(kwargs or {}))


# 1. resume: checkpoints load on the CPU (weights_only), generators get CPU states -----------

def test_resume_equals_uninterrupted_run_on_every_device(dev, tmp_path, monkeypatch):
    data, cfg = on(toy_data(128), dev), QUICK.replace(augment=Augment(hflip=True))
    whole = fit(mlp(3, 0.2), data, cfg, data)
    original, calls = engine._train_epoch, {"n": 0}

    def crash_at_second(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(engine, "_train_epoch", crash_at_second)
    with pytest.raises(KeyboardInterrupt):
        fit(mlp(3, 0.2), data, cfg, data, checkpoint=tmp_path / "c.ckpt")
    monkeypatch.setattr(engine, "_train_epoch", original)
    resumed = fit(mlp(7, 0.2), data, cfg, data, checkpoint=tmp_path / "c.ckpt")
    assert numbers(resumed.curves) == numbers(whole.curves) and resumed.final == whole.final


def test_checkpoint_loads_onto_the_cpu_with_weights_only(tmp_path, monkeypatch):
    """A CUDA generator's set_state takes a CPU byte tensor only: the checkpoint is loaded
    with map_location='cpu' (never the run's device) and weights_only=True."""
    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append((kwargs.get("map_location"), kwargs.get("weights_only")))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    data = toy_data(64)
    fit(mlp(0), data, QUICK.replace(max_epochs=1), checkpoint=tmp_path / "c.ckpt")
    fit(mlp(0), data, QUICK.replace(max_epochs=1), checkpoint=tmp_path / "c.ckpt")
    assert seen and all(s == ("cpu", True) for s in seen)
    state = ckpt.load(tmp_path / "c.ckpt", {})
    assert all(g.device.type == "cpu" and g.dtype == torch.uint8 for g in state["gens"])


# checkpoint identity and integrity (issue #15, item 5) ------------------------------------

def test_resuming_another_run_names_the_checkpoint_and_the_field(tmp_path):
    data, path = toy_data(64), tmp_path / "c.ckpt"
    fit(mlp(0), data, QUICK.replace(max_epochs=1), checkpoint=path)
    with pytest.raises(ConfigError, match=r"c\.ckpt.*config\.lr was 0\.05.* is 0\.1"):
        fit(mlp(0), data, QUICK.replace(max_epochs=1, lr=0.1), checkpoint=path)
    with pytest.raises(ConfigError, match=r"c\.ckpt.*train was"):
        fit(mlp(0), toy_data(64, seed=1), QUICK.replace(max_epochs=1), checkpoint=path)
    wide = nn.Sequential(nn.Flatten(), nn.Linear(192, 32), nn.ReLU(), nn.Linear(32, 10))
    with pytest.raises(ConfigError, match=r"c\.ckpt.*parameters\.1\.bias was \[64\]"):
        fit(wide, data, QUICK.replace(max_epochs=1), checkpoint=path)


def test_truncated_or_altered_checkpoint_names_the_file_and_the_restart(tmp_path):
    data, path = toy_data(64), tmp_path / "c.ckpt"
    fit(mlp(0), data, QUICK.replace(max_epochs=1), checkpoint=path)
    blob = path.read_bytes()
    path.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(CheckpointError, match=r"c\.ckpt is truncated or altered.*delete"):
        fit(mlp(0), data, QUICK.replace(max_epochs=1), checkpoint=path)
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"c\.ckpt is not a genbench checkpoint"):
        fit(mlp(0), data, QUICK.replace(max_epochs=1), checkpoint=path)


# 2. torchrun: every rank on cuda:LOCAL_RANK, decided in Runtime.from_env -------------------

def test_runtime_puts_each_rank_on_its_own_gpu(monkeypatch):
    from genbench.pytest_plugin import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("GENBENCH_DEVICE", raising=False)
    for key, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(key, value)
    want = torch.device("cuda", 1)
    assert Runtime.from_env("full").device == want
    assert Runtime.from_env("cuda").device == want
    assert Runtime.from_env(None).device == want
    assert resolve_device("full") == want  # the plugin's device fixture
    rt = Runtime.from_env("full")
    assert (rt.rank, rt.world, rt.local_rank) == (1, 2, 1)
    assert Runtime.from_env("smoke").device == torch.device("cpu")
    assert Runtime.from_env("cuda:0").device == torch.device("cuda", 0)  # explicit wins


def test_ddp_is_compiled_not_the_other_way_round(monkeypatch, tmp_path):
    """compile(DDP(model)), with static shapes; DDP gets the rank's device index."""
    import torch.distributed as dist

    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        calls = []
        monkeypatch.setattr(torch, "compile", lambda m, **kw: calls.append((m, kw)) or m)
        rt = Runtime(world=2, compile=True)
        wrapped = engine._wrap(nn.Linear(2, 2), rt)
        assert isinstance(wrapped, torch.nn.parallel.DistributedDataParallel)
        assert calls == [(wrapped, {"dynamic": False})]
    finally:
        dist.destroy_process_group()


# 3. fit_many with one model is fit -----------------------------------------------------------

def test_fit_many_of_one_model_is_fit(dev, monkeypatch):
    data = on(toy_data(128), dev)
    built = []
    monkeypatch.setattr(engine, "StackedTrainee",
                        lambda models: built.append(models) or pytest.fail("vmap for K=1"))
    [many] = fit_many([mlp(1)], data, QUICK, data, seeds=[4], strategy="vmap")
    alone = fit(mlp(1), data, QUICK.replace(seed=4), data)
    assert numbers(many.curves) == numbers(alone.curves) and not built


# 4. vmap trains BatchNorm models, running statistics per model ------------------------------

def test_vmap_trains_batchnorm_models_as_sequential_fits(dev):
    data, seeds = on(toy_data(128), dev), [0, 1, 2]
    cfg = QUICK.replace(keep_weights=True)
    together = fit_many([bn_net(s) for s in seeds], data, cfg, data, seeds=seeds,
                        strategy="vmap")
    for s, r in zip(seeds, together):
        alone = fit(bn_net(s), data, cfg.replace(seed=s), data)
        assert r.curves["train_loss"] == pytest.approx(alone.curves["train_loss"], rel=1e-4)
        assert r.final["test_loss"] == pytest.approx(alone.final["test_loss"], rel=1e-4)
        for name in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
            assert torch.allclose(r.final_state[name].float(),
                                  alone.final_state[name].float(), rtol=1e-4, atol=1e-6)


# 5. dropout under vmap: what holds ---------------------------------------------------------

def test_vmap_dropout_masks_differ_per_model_and_are_reproducible(dev):
    """Identical models, data order and labels: under vmap only the dropout masks can make
    them differ, so differing results show per-model masks; the launch is reproducible."""
    data = on(toy_data(128), dev)
    cfg = QUICK.replace(max_epochs=2)

    def run(p: float):
        return fit_many([mlp(0, p), mlp(0, p)], data, cfg, seeds=[5, 5], strategy="vmap")

    a, b = run(0.3)
    assert a.curves["train_loss"] != b.curves["train_loss"]
    assert [r.curves["train_loss"] for r in run(0.3)] == [a.curves["train_loss"],
                                                         b.curves["train_loss"]]
    c, d = run(0.0)
    assert c.curves["train_loss"] == pytest.approx(d.curves["train_loss"], rel=1e-6)


# 6. bf16: the stop rule and records in fp32; ChannelOffset keeps bf16 ----------------------

def test_bf16_stop_rule_is_judged_in_fp32():
    """99 clear samples and one whose two logits differ by 2^-10: a tie in bf16 (argmax 0),
    right in fp32 (label 1). The run must count as fitted with 100% train accuracy."""
    x = torch.cat([torch.tensor([[0.0, 1.0]]).repeat(99, 1), torch.tensor([[1.0, 1 + 2**-10]])])
    x, y = x.view(100, 1, 1, 2), torch.ones(100, dtype=torch.long)
    model = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.eye(2))
        model[1].bias.zero_()
    cfg = TrainConfig(lr=1e-12, momentum=0.0, batch_size=100, max_epochs=1, precision="bf16",
                      stop="train_acc", stop_target=1.0)
    r = fit(model, Tensors(x, y), cfg)
    assert r.curves["train_acc"] == [pytest.approx(0.99)]  # the online (bf16) pass
    assert r.fitted and r.final["train_acc"] == 1.0


def test_channel_offset_keeps_bf16_under_autocast():
    layer = ChannelOffset(3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(torch.randn(2, 3, 4, 4, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16


def test_bf16_training_has_finite_losses_on_every_device(dev):
    r = fit(bn_net(0), on(toy_data(128), dev), QUICK.replace(precision="bf16"))
    assert all(torch.isfinite(torch.tensor(r.curves["train_loss"])))


def test_bf16_batchnorm_models_train_under_vmap_on_every_device(dev):
    """The case that failed on an H200 (eo_resnet x20, eager, bf16 autocast: BatchNorm's
    backward under vmap refused bf16 input with fp32 running statistics)."""
    runs = fit_many([bn_net(0), bn_net(1)], on(toy_data(128), dev),
                    QUICK.replace(precision="bf16", compile="off"), strategy="vmap")
    assert all(torch.isfinite(torch.tensor(r.curves["train_loss"])).all() for r in runs)


def test_stacked_batchnorm_sees_fp32_input_under_bf16_autocast():
    trainee = StackedTrainee([bn_net(0), bn_net(1)])
    seen = []
    trainee.base[1].register_forward_hook(lambda m, args, out: seen.append(
        (args[0].dtype, out.dtype)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = trainee.forward(torch.randn(2, 4, 3, 8, 8))
    assert seen == [(torch.float32, torch.float32)] and logits.shape == (2, 4, 10)


# 7. determinism: cuDNN deterministic while training; bitwise on every device ---------------

def test_fit_is_bitwise_deterministic_with_cudnn_deterministic(dev):
    seen = []
    model = bn_net(0)

    def hook(module, *args) -> None:  # the flags seen by every training step
        if module.training and torch.is_grad_enabled():
            seen.append((torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
                         torch.backends.cudnn.allow_tf32,
                         torch.backends.cuda.matmul.allow_tf32))

    model.register_forward_hook(hook)
    data = on(toy_data(128), dev)
    a = fit(model, data, QUICK.replace(keep_weights=True, augment=Augment(crop_padding=2)))
    b = fit(bn_net(0), data, QUICK.replace(keep_weights=True, augment=Augment(crop_padding=2)))
    assert set(seen) == {(True, False, False, False)}  # deterministic, no autotune, no TF32
    assert numbers(a.curves) == numbers(b.curves)
    assert all(torch.equal(a.final_state[n], b.final_state[n]) for n in a.final_state)


# 8. host syncs: one read-back per epoch, none per step ---------------------------------------

def _readbacks(fn) -> int:
    with OpCounter() as counter:
        fn()
    return counter.ops["aten._local_scalar_dense.default"] + counter.ops["bool-mask index"] \
        + counter.ops["aten.nonzero.default"]


def test_readbacks_do_not_grow_with_steps_or_models(dev, monkeypatch):
    monkeypatch.setattr(engine.checks, "check_inputs", lambda *a, **k: None)  # the loop only
    data = on(toy_data(256), dev)
    few = _readbacks(lambda: fit(mlp(0), data, QUICK.replace(batch_size=128), data))
    many = _readbacks(lambda: fit(mlp(0), data, QUICK.replace(batch_size=16), data))
    assert few == many
    k2 = _readbacks(lambda: fit_many([mlp(s) for s in range(2)], data, QUICK, data,
                                     strategy="vmap"))
    k4 = _readbacks(lambda: fit_many([mlp(s) for s in range(4)], data, QUICK, data,
                                     strategy="vmap"))
    assert k2 == k4


def test_ddp_shard_selection_reads_back_once_per_epoch():
    """A rank's share of each global batch is computed per epoch, not by a mask per step."""
    x, y = torch.randn(256, 3), torch.randint(0, 10, (1, 256))
    rank0 = Runtime(rank=0, world=2)
    gens = [torch.Generator().manual_seed(0)]

    def epoch(batch: int):
        return lambda: list(ResidentSource(x, y, batch, rank0).batches(gens, Augment(), 0))

    assert _readbacks(epoch(16)) == _readbacks(epoch(128)) <= 2
    src = ResidentSource(x, y, 16, rank0)
    got = torch.cat([yb[0] for _, yb, _ in src.batches([torch.Generator().manual_seed(1)],
                                                       Augment(), 0)])
    perm = torch.randperm(256, generator=torch.Generator().manual_seed(1))
    assert torch.equal(got, y[0][perm[perm % 2 == 0]])


# 9. torch.compile: static shapes, no recompiles, compile time apart --------------------------

@pytest.fixture
def traced_graphs(monkeypatch):
    """torch.compile with a backend that records each traced graph's input shapes and runs it
    eagerly: the list of graphs, one per compilation."""
    graphs = []

    def counting_backend(gm, example_inputs):
        graphs.append([tuple(t.shape) for t in example_inputs if isinstance(t, torch.Tensor)])
        return gm.forward

    real = torch.compile
    monkeypatch.setattr(torch, "compile",
                        lambda m, **kw: real(m, backend=counting_backend, **kw))
    torch._dynamo.reset()
    yield graphs
    torch._dynamo.reset()


def test_compile_uses_static_shapes_and_reports_compile_time_apart(traced_graphs):
    graphs = traced_graphs
    data, test = toy_data(100), toy_data(60, seed=1)  # a partial last batch of 4
    cfg = QUICK.replace(batch_size=32, compile="on", max_epochs=2)
    r = fit(mlp(0), data, cfg, test)
    after_two = len(graphs)
    fit(mlp(0), data, cfg.replace(max_epochs=4), test)
    assert after_two <= 3 and len(graphs) == after_two  # full, partial, eval; never again
    batch_dims = {shape[0] for g in graphs for shape in g if len(shape) == 4}
    assert batch_dims <= {32, 4, EVAL_BATCH}
    assert r.compile_seconds > 0 and r.seconds >= 0


def test_vmap_step_is_compiled_and_equals_the_eager_launch(traced_graphs):
    """fit_many compiles its vectorized call by fit's rule: BatchNorm's per-model running
    statistics still update in place, every batch shape compiles once, time is reported apart."""
    graphs = traced_graphs
    data, seeds = toy_data(100), [0, 1, 2]  # a partial last batch of 4
    cfg = QUICK.replace(batch_size=32, keep_weights=True)
    compiled = fit_many([bn_net(s) for s in seeds], data, cfg.replace(compile="on"), data,
                        seeds=seeds, strategy="vmap")
    traced = len(graphs)
    eager = fit_many([bn_net(s) for s in seeds], data, cfg.replace(compile="off"), data,
                     seeds=seeds, strategy="vmap")
    assert 2 <= traced <= 3 and len(graphs) == traced  # full, partial (+ eval); eager adds none
    for c, e in zip(compiled, eager):
        assert c.compile_seconds > 0 and e.compile_seconds == 0
        assert c.curves["train_loss"] == pytest.approx(e.curves["train_loss"], rel=1e-5)
        for name in ("1.running_mean", "1.running_var", "1.num_batches_tracked"):
            assert torch.allclose(c.final_state[name].float(), e.final_state[name].float(),
                                  rtol=1e-5, atol=1e-6)


# the schedule and the inputs ----------------------------------------------------------------

def test_lr_at_per_epoch_and_per_step():
    epoch = TrainConfig(lr=0.1, lr_decay=0.5)
    assert [lr_at(epoch, s, 10) for s in (0, 9, 10, 25)] == [0.1, 0.1, 0.05, 0.025]
    step = TrainConfig(lr=0.1, lr_decay=0.95, lr_decay_steps=390.625)
    assert lr_at(step, 0, 16) == 0.1
    assert lr_at(step, 390.625, 16) == pytest.approx(0.095)
    assert lr_at(step, 17, 16) == pytest.approx(0.1 * 0.95 ** (17 / 390.625))
    r = fit(mlp(0), toy_data(64), QUICK.replace(batch_size=16, lr_decay=0.95,
                                                lr_decay_steps=8.0))
    assert r.curves["lr"] == pytest.approx([0.05 * 0.95 ** (4 * e / 8) for e in range(3)])


def test_fit_accepts_a_tensor_dataset_and_names_what_to_pass_otherwise():
    data = toy_data(64)
    r = fit(mlp(0), torch.utils.data.TensorDataset(data.x, data.y), QUICK.replace(max_epochs=1))
    assert r.n_train == 64
    with pytest.raises(ConfigError, match="TensorDataset"):
        fit(mlp(0), [(data.x[0], data.y[0])], QUICK)


def test_evaluation_is_a_named_result():
    r = engine.evaluate(mlp(0), toy_data(64), keep_probs=True)
    assert isinstance(r, engine.ModelEvaluation) and r.probs.shape == (64, 10)
    assert 0 <= r.acc <= 1 and r.loss > 0
    assert engine.evaluate(mlp(0), toy_data(64)).probs is None  # kept only when asked for
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.acc = 1.0  # type: ignore[misc]
    buf = io.BytesIO()
    torch.save(r.probs, buf)


def test_streamed_labels_travel_with_their_batch_without_a_blocking_index_copy(dev):
    """The streamed source keeps labels on the host and copies each batch's labels
    non-blocking, instead of a blocking ``index.to(device)`` per step."""
    from genbench.training.sources import StreamSource

    images = torch.randint(0, 255, (10, 1, 4, 4), dtype=torch.uint8)
    dataset = torch.utils.data.TensorDataset(images, torch.arange(10))
    labels = torch.arange(10).remainder(3)[None]
    src = StreamSource(dataset, labels.to(dev), 4, Runtime(device=dev), dev,
                       lambda x: x.float(), workers=0, seed=0)
    assert src.labels.device.type == "cpu" and src.steps_per_epoch == 2
    for x, y, size in src.batches([torch.Generator(device=dev)], Augment(), 0):
        assert y.device == x.device == dev and size == 4 and y.shape == (1, 4)
