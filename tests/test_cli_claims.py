"""`genbench claims` and docs/claims.md: the catalogue comes from the claim marks, and the
committed docs/claims.md is what the marks say today."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from genbench import catalogue
from genbench.catalogue import Claim

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def claims_json() -> list[dict]:
    """One collection of claims/ in a child process (a nested in-process pytest would share
    this session's imported modules)."""
    done = subprocess.run([sys.executable, "-m", "genbench.cli", "claims", "--json"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_every_claim_is_listed_with_its_source_statement_and_scales(claims_json):
    ids = [c["id"] for c in claims_json]
    assert len(ids) == len(set(ids)) >= 35
    assert {"Z.T1.fit_random", "E.A1.construction", "C.S3.softmax_scale",
            "Z.T2.imagenet"} <= set(ids)
    for c in claims_json:
        assert c["source"] and c["statement"] and c["module"].startswith("test_")
        assert "smoke" in c["scales"] or c["id"] == "Z.T2.imagenet"
        assert all(w.split("[")[0] in c["scales"] and reason for w, reason in c["gaps"].items())


def test_docs_claims_md_is_generated_from_the_marks(claims_json):
    claims = [Claim(**{**c, "scales": tuple(c["scales"]), "cases": tuple(c["cases"])})
              for c in claims_json]
    expected = catalogue.render_markdown(claims)
    committed = (ROOT / "docs" / "claims.md").read_text()
    assert committed == expected, (f"docs/claims.md is out of date with the claim marks: run "
                                   f"`{catalogue.REGENERATE}` and commit it")


def test_readme_points_to_the_catalogue():
    readme = (ROOT / "README.md").read_text()
    assert "docs/claims.md" in readme and "CLAIMS.md`" not in readme


def test_keyword_selects_claims_like_pytest(tmp_path, monkeypatch, capsys):
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "test_t.py").write_text(
        '"""Paper T: two toy claims."""\nimport pytest\n\n'
        '@pytest.mark.claim("T.T1.one", source="T, Table 1", statement="one is one")\n'
        '@pytest.mark.parametrize("row", ["a", "b"])\n'
        'def test_one(claim, row):\n    claim.conclude()\n\n'
        '@pytest.mark.claim("T.T2.two", source="T, Table 2", statement="two is two")\n'
        'def test_two(claim):\n    claim.conclude()\n')
    monkeypatch.chdir(tmp_path)
    (one,) = catalogue.collect("T1")
    assert (one.id, one.cases, one.scales, one.heading) == (
        "T.T1.one", ("a", "b"), ("smoke", "full"), "Paper T: two toy claims.")
    assert [c.id for c in catalogue.collect()] == ["T.T1.one", "T.T2.two"]
    assert "T.T2.two  (T, Table 2)" in catalogue.render_text(catalogue.collect())
