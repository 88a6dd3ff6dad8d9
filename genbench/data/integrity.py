"""Recorded content fingerprints, and the check every load goes through.

The fingerprints are sha256 of the decoded arrays (:func:`genbench.data.dataset.content_fingerprint`)
computed from the shared datasets of this workplace (see their README for provenance). They are
recorded per split rather than per file because the CIFAR-10 files here are re-encoded: the bytes
differ from the originals while the arrays are identical.

Two splits could not be fingerprinted in their official form here: the full 10,000-image CIFAR-10
test split (only its first 1,000 images exist here) and the original USPS train file (only a
reconstruction with identical uint8 content). For content not in the table, files that carry
torchvision's own published md5s are accepted as the originals, and the verdict says so.
"""

from __future__ import annotations

from pathlib import Path

from genbench.data.dataset import ArrayDataset
from genbench.data.sources import Source, passes_torchvision_md5
from genbench.errors import DatasetError

RECORDED: dict[tuple[str, str], str] = {
    ("mnist", "train"): "3a6e1083d221c0ded9a47f737cc06d4efbff04799a5d8fdbc4964aaef5e3fd0e",
    ("mnist", "test"): "8d5ddf2282540d8c00d91dd8049855289a30004185af72f7496c7bf6da32f405",
    ("fashion_mnist", "train"): "63684f06a8e83b295f45c484f4c787de23d0db23059354695fd49580c5908dcf",
    ("fashion_mnist", "test"): "c858931d2c79ee2af182b88b52b15a908e40616837ca52788bce4fad78df2798",
    ("cifar10", "train"): "d1f649fa55543fb007f400a37d7250d406dd67cf086e2c3ab0a8177599c0110f",
    # The known-partial split: the first 1,000 of the 10,000 test images, in order.
    ("cifar10", "test"): "4605d466a5205575dd06d1b60fd9bdbf66d2fb006a046ba5dc76739d8edea837",
    ("usps", "train"): "5b880f592b2527f8fca5e7d24931e1bc7076e44be0fa0f87b83f5fb827e98a8a",
    ("usps", "test"): "dbe0ef1676b2587c9a12957664a7b30cc7eced7e439e0901b46920422552c5c5",
}

VERDICT_RECORDED = "ok (recorded sha256)"
VERDICT_MD5 = "ok (torchvision md5; content not recorded here)"


def verify(ds: ArrayDataset, source: Source, root: Path, split: str) -> str:
    """The verdict for content read from ``root``, or a DatasetError naming both fingerprints."""
    actual = ds.fingerprint()
    expected = RECORDED[(source.name, split)]
    if actual == expected:
        return VERDICT_RECORDED
    if passes_torchvision_md5(source, root, split):
        return VERDICT_MD5
    files = ", ".join(str(path) for path in source.paths(root, split))
    raise DatasetError(
        f"{source.title} {split} under {root} does not match its recorded content: expected "
        f"sha256 {expected}, got {actual} ({len(ds):,} images) from {files}; nor do the files "
        f"carry torchvision's published md5s. The files are altered or from another version. "
        f"Fix: restore them (`genbench data fetch {source.name}` where there is internet) or set "
        f"GENBENCH_DATA to a root holding the original data.")


def check_fingerprint(ds: ArrayDataset, expected: str, what: str, path: Path, fix: str) -> None:
    """Raise a DatasetError unless ``ds`` has the ``expected`` content fingerprint."""
    actual = ds.fingerprint()
    if actual != expected:
        raise DatasetError(f"{what} at {path} does not match its recorded content: expected "
                           f"sha256 {expected}, got {actual} ({len(ds):,} images). Fix: {fix}")
