"""Datasets as whole-split tensors: loading with integrity checks, fixtures, preprocessing and
corruptions. See ``docs/architecture.md`` for the contract."""

from genbench.data.dataset import ArrayDataset, PartialDatasetWarning, content_fingerprint
from genbench.data.fixtures import load_fixture
from genbench.data.loading import load

__all__ = ["ArrayDataset", "PartialDatasetWarning", "content_fingerprint", "load", "load_fixture"]
