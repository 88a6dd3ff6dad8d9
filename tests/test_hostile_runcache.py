"""The run cache under sharing, crashes and edits (issue 15 item 4, issue 13 item 7): no stale
run after a code or library change, no result lost by concurrent writers (real processes), and
every damaged cache file reported by path, discarded and retrained."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from genbench import experiment
from genbench.experiment import (DataSpec, RunCache, RunCacheWarning, Runs, code_hash,
                                 environment_parts, prepare, train_runs)
from genbench.training import RunResult, TrainConfig

REPO = Path(__file__).resolve().parents[1]
PARTS = {"model": "m", "seeds": [0, 1]}


def fake_runs(n: int = 2, tag: str = "m") -> list[RunResult]:
    return [RunResult(config={"lr": 0.1}, model=tag, seed=i, final={"test_acc": 0.5 + i / 10})
            for i in range(n)]


class Counter:
    def __init__(self, n: int = 2) -> None:
        self.calls, self.n = 0, n

    def __call__(self) -> list[RunResult]:
        self.calls += 1
        return fake_runs(self.n)


def filled(tmp_path: Path) -> tuple[RunCache, Path]:
    cache = RunCache(tmp_path)
    cache.get_or_train(PARTS, Counter(), expected=2)
    return cache, cache.path(RunCache.key(PARTS))


def test_disk_round_trip_and_no_temporary_files_left(tmp_path):
    _, path = filled(tmp_path)
    train = Counter()
    again = RunCache(tmp_path).get_or_train(PARTS, train, expected=2)
    assert train.calls == 0 and [r.final for r in again] == [r.final for r in fake_runs()]
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("damage, why", [
    (lambda p: p.write_text(""), "is empty"),
    (lambda p: p.write_text("\n".join(p.read_text().splitlines()[:2]) + "\n"), "is short"),
    (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "corrupt"),
    (lambda p: p.write_text(p.read_text().replace('"lr": 0.1', '"lr": [')), "corrupt"),
    (lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "cannot be read"),
    (lambda p: p.write_text("\n".join(fake_run.to_json() for fake_run in fake_runs())), "no run-cache header"),
])
def test_damaged_file_is_reported_by_path_discarded_and_retrained(tmp_path, damage, why):
    _, path = filled(tmp_path)
    damage(path)
    train = Counter()
    with pytest.warns(RunCacheWarning, match=why) as record:
        results = RunCache(tmp_path).get_or_train(PARTS, train, expected=2)
    assert str(path) in str(record[0].message)
    assert train.calls == 1 and len(results) == 2
    assert RunCache(tmp_path).get_or_train(PARTS, Counter(), expected=2)  # rewritten whole


def test_file_of_another_key_is_not_returned(tmp_path):
    _, path = filled(tmp_path)
    other = {"model": "other", "seeds": [0, 1]}
    os.replace(path, RunCache(tmp_path).path(RunCache.key(other)))  # a copied/renamed file
    train = Counter()
    with pytest.warns(RunCacheWarning, match="another key"):
        RunCache(tmp_path).get_or_train(other, train, expected=2)
    assert train.calls == 1


def test_fewer_runs_than_seeds_is_short(tmp_path):
    cache = RunCache(tmp_path)
    cache.get_or_train(PARTS, Counter(1), expected=1)
    with pytest.warns(RunCacheWarning, match="1 runs where 2 belong"):
        RunCache(tmp_path).get_or_train(PARTS, Counter(), expected=2)


def test_unwritable_cache_folder_warns_before_training_and_returns_the_result(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    order = []

    def train():
        order.append("train")
        return fake_runs()
    with pytest.warns(RunCacheWarning, match="not writable") as record:
        results = RunCache(blocker / "cache").get_or_train(PARTS, train, expected=2)
    assert len(results) == 2 and order == ["train"] and len(record) == 1
    assert str(blocker / "cache") in str(record[0].message)


def test_write_failure_after_training_still_returns(tmp_path, monkeypatch):
    cache = RunCache(tmp_path)
    assert cache.check_writable()
    monkeypatch.setattr(experiment.tempfile, "mkstemp",
                        lambda **kw: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.warns(RunCacheWarning, match="could not be written"):
        assert len(cache.get_or_train(PARTS, Counter(), expected=2)) == 2
    assert list(tmp_path.iterdir()) == []


WORKER = textwrap.dedent("""
    import random, sys, time, warnings
    from genbench.experiment import RunCache, RunCacheWarning
    from genbench.training import RunResult
    warnings.simplefilter("error", RunCacheWarning)  # a half-read file would fail the worker
    directory, me = sys.argv[1], int(sys.argv[2])
    rng = random.Random(me)
    keys = list(range(12))
    rng.shuffle(keys)
    for k in keys:
        def train(k=k):
            time.sleep(rng.random() * 0.02)
            return [RunResult(config={"k": k}, model=f"m{k}", seed=s, final={"v": k + s / 10})
                    for s in range(3)]
        got = RunCache(directory).get_or_train({"key": k}, train, expected=3)
        assert [r.final["v"] for r in got] == [k + s / 10 for s in range(3)], (k, got)
""")


def test_four_processes_filling_the_same_keys_lose_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), str(i)], env=env,
                                stderr=subprocess.PIPE, text=True) for i in range(4)]
    for worker in workers:
        _, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 12 and all(n.endswith(".jsonl") for n in names)  # no temp file left
    for k in range(12):
        results = RunCache(tmp_path).get_or_train({"key": k}, lambda: pytest.fail("retrained"),
                                                   expected=3)
        assert [r.model for r in results] == [f"m{k}"] * 3


# --- the key: code, versions, device kind, precision -----------------------------------------

def test_code_hash_sees_a_changed_model(tmp_path):
    copy = tmp_path / "genbench"
    for pkg in experiment.CODE_PACKAGES:
        (copy / pkg).mkdir(parents=True)
        for f in (REPO / "genbench" / pkg).glob("*.py"):
            (copy / pkg / f.name).write_bytes(f.read_bytes())
    (copy / "experiment.py").write_bytes((REPO / "genbench" / "experiment.py").read_bytes())
    before = code_hash(copy)
    assert before == code_hash(REPO / "genbench")  # the same content hashes the same anywhere
    zhang = copy / "models" / "zhang.py"
    zhang.write_text(zhang.read_text() + "\n# an edited model\n")
    assert code_hash.__wrapped__(copy) != before


def test_environment_parts_name_versions_device_kind_and_precision():
    import torchvision

    parts = environment_parts(torch.device("cpu"), TrainConfig())
    assert parts["torch"] == torch.__version__ and parts["torchvision"] == torchvision.__version__
    assert parts["device_kind"].startswith("cpu (") and parts["precision"] == "fp32"
    assert environment_parts(torch.device("cpu"), TrainConfig(precision="bf16"))["precision"] == "bf16"
    assert parts["code"] == code_hash()


def test_cpu_runs_are_keyed_by_thread_count(monkeypatch):
    """CPU numbers depend on the thread count (reduction order): a disk cache shared between
    `--threads 1` and `--threads 2` must not serve one's runs to the other."""
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    one = environment_parts(torch.device("cpu"), TrainConfig())
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    four = environment_parts(torch.device("cpu"), TrainConfig())
    assert (one["threads"], four["threads"]) == (1, 4)
    assert RunCache.key(one) != RunCache.key(four)


def test_changed_code_or_library_version_trains_a_fresh_run(monkeypatch):
    train, test = prepare(DataSpec("mnist", n_train=100, n_test=100))
    runs = Runs("eo_mlp", TrainConfig(lr=0.05, max_epochs=1), seeds=(0,))
    cache = RunCache()
    first = train_runs(runs, train, test, cache=cache)
    assert train_runs(runs, train, test, cache=cache) is first
    monkeypatch.setattr(experiment, "code_hash", lambda: "edited-code")
    assert train_runs(runs, train, test, cache=cache) is not first
    monkeypatch.undo()
    monkeypatch.setattr(torch, "__version__", "99.0")
    assert train_runs(runs, train, test, cache=cache) is not first


def test_cache_file_header_names_the_key(tmp_path):
    _, path = filled(tmp_path)
    header = json.loads(path.read_text().splitlines()[0])
    assert header == {"genbench_run_cache": 1, "key": RunCache.key(PARTS), "runs": 2}
