"""genbench plan: work counts, memory, parsing, the table and JSON, and every real claim costed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import genbench.plan as plan
from genbench.cli import main
from genbench.errors import ConfigError
from genbench.theory.kernels import kernel_solve_bytes

RATES = plan.Rates(float64=1e10, float32=2e10, mlp=1e10, conv=5e9, threads=2)

FAKE = '''
import pytest

from genbench.plan import Part, Work

PLAN_WORK = {"T.P.cheap": lambda case, scale: Work((Part("solve", "float64", 1e10, 2**20),)),
             "T.P.big": lambda case, scale: Work((Part("train", "conv", 5e13 if case == "wide"
                                                        else 5e12, 2**34),), ("a note",))}


@pytest.mark.claim("T.P.cheap", source="fake", statement="cheap")
def test_cheap(claim, scale, device):
    claim.at_least("one", 1.0, 0.5)
    claim.conclude()


@pytest.mark.claim("T.P.big", source="fake", statement="big")
@pytest.mark.parametrize("width", ["narrow", "wide"])
def test_big(claim, scale, device, width):
    claim.at_least("one", 1.0, 0.5)
    claim.conclude()


@pytest.mark.claim("T.P.unknown", source="fake", statement="no cost model")
def test_unknown(claim, scale, device):
    claim.at_least("one", 1.0, 0.5)
    claim.conclude()
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "test_planned.py").write_text(FAKE)
    return tmp_path


def test_parse_duration_and_bytes() -> None:
    assert plan.parse_duration("2h") == 7200
    assert plan.parse_duration("90m") == 5400
    assert plan.parse_duration("45") == 45
    assert plan.parse_bytes("20GiB") == 20 * 2**30
    assert plan.parse_bytes("6G") == 6e9
    with pytest.raises(ConfigError, match="--budget"):
        plan.parse_duration("two hours")
    with pytest.raises(ConfigError, match="--memory"):
        plan.parse_bytes("lots")


def test_model_flop_is_counted_from_the_model() -> None:
    fwd, params, _, kind = plan.model_cost("mlp_1x512", (3, 28, 28))
    assert fwd == 2 * (3 * 28 * 28 * 512 + 512 * 10)  # the two matmuls, per image
    assert params == 3 * 28 * 28 * 512 + 512 + 512 * 10 + 10
    assert kind == "mlp"
    assert plan.model_cost("c_cnn", (1, 28, 28))[3] == "conv"


def test_training_work_is_flop_per_image_x_images_x_epochs_x_3() -> None:
    fwd = plan.model_cost("mlp_1x512", (3, 28, 28))[0]
    part = plan.training("mlp_1x512", "cifar10", images=50_000, epochs=300, runs=2, evals=300,
                         eval_images=1_000, in_shape=(3, 28, 28))
    assert part.flop == 2 * (3 * fwd * 50_000 * 300 + fwd * 1_000 * 300)
    assert part.kind == "mlp"
    # the figure: one MLP epoch over 50,000 CIFAR-10 images is about 3.6e11 FLOP
    assert 3 * fwd * 50_000 == pytest.approx(3.6e11, rel=0.03)


def test_kernel_memory_and_the_largest_n_that_fits() -> None:
    part = plan.kernel_solve(60_000, 784, "MNIST", n_eval=10_000)
    data = 8 * (60_000 + 10_000) * 784
    assert part.memory == kernel_solve_bytes(60_000, 784, 10, torch.float64, copies_data=False) + data
    assert part.flop > 60_000**3 / 3
    n = plan.largest_kernel_n(6 * plan.GIB, 784)
    assert plan.BASE_MEMORY + plan.kernel_solve(n, 784, "", 10_000).memory <= 6 * plan.GIB
    assert plan.BASE_MEMORY + plan.kernel_solve(n + 1, 784, "", 10_000).memory > 6 * plan.GIB
    assert 20_000 < n < 30_000
    # features stored in the solve's dtype are not copied: float32 features, float32 solve
    narrow = plan.kernel_solve(50_000, 32_000, "", 1_000, "float32", features="float32")
    wide = plan.kernel_solve(50_000, 32_000, "", 1_000, "float32")
    assert wide.memory - narrow.memory == 4 * 50_000 * 32_000 + 4 * 51_000 * 32_000


def test_cifar_kernel_rows_fit_in_20_gib_at_their_stated_n() -> None:
    """Z.T3.kernel_cifar's full case: raw pixels in float64 at the largest round n that fits,
    random-conv features in float32 at the paper's 50,000, all within 20 GiB (it was 43.6 GiB
    with float64 features)."""
    case = _full_plan("kernel_cifar")[("Z.T3.kernel_cifar", None)]
    assert case.memory <= 20 * plan.GIB
    solves = [part["what"] for part in case.parts]
    assert any(w.startswith("CIFAR-10 raw:") and "n=48,000" in w for w in solves)
    assert any(w.startswith("CIFAR-10 random conv:") and "n=50,000" in w for w in solves)


def test_case_ids_drop_the_scale() -> None:
    assert plan.case_of("claims/t.py::test_a[mlp_1x512-full]", "full") == "mlp_1x512"
    assert plan.case_of("claims/t.py::test_a[full]", "full") is None
    assert plan.case_of("claims/t.py::test_a", "full") is None


def test_plan_of_a_project_orders_costs_and_applies_limits(project: Path) -> None:
    p = plan.make_plan("full", rates=RATES, rootdir=project, budget_s=600,
                       memory_limit=8 * plan.GIB)
    by_case = {(e.claim, e.case): e for e in p.cases}
    assert set(by_case) == {("T.P.cheap", None), ("T.P.big", "narrow"), ("T.P.big", "wide"),
                            ("T.P.unknown", None)}
    cheap = by_case["T.P.cheap", None]
    assert cheap.seconds == pytest.approx(plan.CASE_OVERHEAD_S + 1e10 / 1e10)
    assert cheap.gpu_seconds == pytest.approx(plan.CASE_OVERHEAD_S
                                              + 1e10 / plan.GPU.rate["float64"])
    assert cheap.fits and cheap.memory == plan.BASE_MEMORY + 2**20
    narrow, wide = by_case["T.P.big", "narrow"], by_case["T.P.big", "wide"]
    assert narrow.seconds == pytest.approx(plan.CASE_OVERHEAD_S + 1000)
    assert not narrow.fits and "memory" in narrow.why_not and "time" in narrow.why_not
    assert wide.gpu_seconds == pytest.approx(plan.CASE_OVERHEAD_S + 5e13 / plan.GPU.rate["conv"])
    on_gpu = {(e.claim, e.case): e for e in p.on_gpu().cases}  # what a cuda campaign reads
    assert on_gpu["T.P.big", "wide"].seconds == wide.gpu_seconds
    assert on_gpu["T.P.big", "wide"].parts[0]["seconds"] == 5e13 / plan.GPU.rate["conv"]
    assert "no cost model" in by_case["T.P.unknown", None].why_not

    text = plan.table(p)
    rows = [line.split()[0] for line in text.splitlines() if line.startswith("T.P.")]
    assert rows == ["T.P.cheap", "T.P.big[narrow]", "T.P.big[wide]", "T.P.unknown"]
    assert "note: a note" in text
    data = json.loads(p.to_json())
    assert data["rates"]["float64"] == 1e10
    assert {c["claim"] for c in data["cases"]} == {"T.P.cheap", "T.P.big", "T.P.unknown"}

    assert plan.Plan.from_json(p.to_json()) == p  # a plan computed in a child comes back whole

    selected = plan.make_plan("full", "wide", rates=RATES, rootdir=project)
    assert [(e.claim, e.case) for e in selected.cases] == [("T.P.big", "wide")]


def test_cli_plan_json(project: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(project)
    monkeypatch.setattr(plan, "calibrate", lambda: RATES)
    assert main(["plan", "--json", "-k", "cheap", "--budget", "1h", "--memory", "1GiB"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["budget_s"] == 3600 and data["memory_limit"] == 2**30
    assert [c["claim"] for c in data["cases"]] == ["T.P.cheap"]
    assert main(["plan", "-k", "cheap"]) == 0
    assert "T.P.cheap" in capsys.readouterr().out


def test_every_real_claim_case_has_a_cost() -> None:
    """Each full-scale case of claims/ is costed: a claim renamed, split into cases or given new
    settings must keep its estimator working (add one in genbench.plan for a new claim)."""
    root = Path(__file__).resolve().parent.parent
    p = plan.make_plan("full", rates=RATES, rootdir=root)
    assert len(p.cases) >= 30
    broken = [f"{e.node_id}: {e.why_not}" for e in p.cases if e.seconds is None]
    assert not broken, "\n".join(broken)
    assert all(e.flop > 0 and e.memory > plan.BASE_MEMORY for e in p.cases
               if e.claim != "C.S3.softmax_scale")


def test_full_scale_mnist_kernel_is_costed_at_its_precision_and_fits_24_gib() -> None:
    """Table 3 at n = 60,000 runs in float32 (claims/test_zhang_kernels.py SETTINGS): 14.4 GB
    for the matrix, where float64 would need 28.8 GB; the float64 checks at 30,000 (raw pixels and
    Gabor features) are costed too."""
    root = Path(__file__).resolve().parent.parent
    p = plan.make_plan("full", rates=RATES, rootdir=root, keyword="kernel_mnist")
    (case,) = p.cases
    assert case.memory < 20 * plan.GIB
    assert plan.kernel_solve(60_000, 784, "", 10_000, "float32").memory < case.memory
    checks = [part["what"] for part in case.parts if "precision check" in part["what"]]
    assert len(checks) == 2 and any("raw" in w for w in checks) and any("Gabor" in w for w in checks)


def test_runs_override_scales_the_extreme_study_cost() -> None:
    """`genbench plan --runs 20`: an extreme-overfitting study costs a tenth of the paper's R.
    In fresh processes, as the CLI and a campaign run it: the claim module reads R at import,
    and this test session may already hold that module."""
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if k != "GENBENCH_RUNS"}

    def planned(*runs: str) -> dict:
        out = subprocess.run([sys.executable, "-m", "genbench.cli", "plan", "--json", "-k",
                              "extreme_point and eo_mlp-mnist", *runs], cwd=root, env=env,
                             capture_output=True, text=True, check=True).stdout
        (case,) = json.loads(out)["cases"]
        return case

    paper, fewer = planned(), planned("--runs", "20")
    assert fewer["flop"] == pytest.approx(paper["flop"] / 10, rel=1e-9)
    assert "20 runs" in " ".join(part["what"] for part in fewer["parts"])


def test_cli_runs_is_full_scale_only_and_a_count(monkeypatch, capsys) -> None:
    monkeypatch.setenv("GENBENCH_RUNS", "")  # restored after the test
    assert main(["plan", "--scale", "smoke", "--runs", "20"]) == 2
    assert "--runs" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plan", "--runs", "0"])
    assert "not a whole number of runs" in capsys.readouterr().err


def test_critical_on_clean_costs_its_full_batch_descent() -> None:
    """E.S3.critical_on_clean runs 100 full-batch GD steps from each of the R extreme points on
    top of the study it shares: at full scale that is twice the normal group's 50 epochs."""
    cost = {claim: e for (claim, _), e in
            _full_plan("eo_mlp-mnist and (critical_on_clean or distance_from_init)").items()}
    gd = [part for part in cost["E.S3.critical_on_clean"].parts if "full-batch GD" in part["what"]]
    normal = [part for part in cost["E.S3.distance_from_init"].parts if "normal" in part["what"]]
    assert len(gd) == len(normal) == 1
    # 100 steps against 50 epochs of the same 60,000 images; the normal group also tests its
    # 10,000 test images every epoch, the descent once at the end
    expected = (3 * 60_000 * 100 + 10_000) / (3 * 60_000 * 50 + 10_000 * 50)
    assert gd[0]["flop"] / normal[0]["flop"] == pytest.approx(expected)
    assert cost["E.S3.critical_on_clean"].flop > cost["E.S3.distance_from_init"].flop


def test_cases_that_read_only_the_corrupted_runs_cost_only_them() -> None:
    """E.S3.extreme_point and l2_does_not_prevent read only the study's extreme group
    (``eo.extreme_runs``): costing the clean group too overstated l2's 35.2 measured minutes
    on Fashion-MNIST as 59.7. The comparisons (distance from init) cost both groups."""
    cost = {claim: e for (claim, _), e in _full_plan(
        "eo_mlp-mnist and (extreme_point or l2_does_not_prevent or distance_from_init)").items()}
    groups = {claim: sorted(part["what"].split(":")[0].split()[-1] for part in e.parts)
              for claim, e in cost.items()}
    assert groups["E.S3.extreme_point"] == groups["E.S3.l2_does_not_prevent"] == ["extreme"]
    assert groups["E.S3.distance_from_init"] == ["extreme", "normal"]
    extreme = cost["E.S3.extreme_point"].parts[0]
    assert extreme["shared"] in {part["shared"] for part in cost["E.S3.distance_from_init"].parts}
    assert cost["E.S3.l2_does_not_prevent"].flop == pytest.approx(cost["E.S3.extreme_point"].flop)


def _full_plan(keyword: str) -> dict[tuple[str, str | None], plan.Estimate]:
    root = Path(__file__).resolve().parent.parent
    p = plan.make_plan("full", rates=RATES, rootdir=root, keyword=keyword)
    return {(e.claim, e.case): e for e in p.cases}


def test_regularized_rows_cost_their_shared_unregularized_run() -> None:
    """A Table 1 regularized row measures its gain against the model's true-label run: the plan
    costs that run too, as the part Z.T1.true_labels shares, so a campaign pays it once."""
    cost = _full_plan("mlp_3x512 and (regularizers or true_labels)")
    row, base = cost[("Z.T1.regularizers", "mlp_3x512-wd")], cost[("Z.T1.true_labels", "mlp_3x512")]
    shared = {part["shared"] for part in row.parts} - {""}
    assert shared == {part["shared"] for part in base.parts} == {"Table 1 true labels: mlp_3x512"}
    assert row.flop == pytest.approx(2 * base.flop)


def test_figure1_sweeps_cost_each_weight_seed_once() -> None:
    """Figure 1c trains the seed-0 sweep (6 noise levels side by side); Figure 1b reads it from
    the run cache and trains the other SWEEP_SEEDS: shared parts, one per seed."""
    cost = _full_plan("mlp_1x512 and (slowdown or test_error)")
    c, b = cost[("Z.F1c.test_error", "mlp_1x512")], cost[("Z.F1b.slowdown", "mlp_1x512")]
    c_keys = [part["shared"] for part in c.parts]
    b_keys = [part["shared"] for part in b.parts]
    assert c_keys == ["label-noise sweep, weight seed 0: mlp_1x512"]
    assert b_keys[0] == c_keys[0] and len(b_keys) == len(set(b_keys)) == 2
    assert b.flop == pytest.approx(2 * c.flop)
