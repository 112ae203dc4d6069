"""An embedder named by import path (``module:Class``): how a user or a benchmark plugs in its own model."""

from __future__ import annotations

import pytest

from kbcurator.embedding import load_embedder
from kbcurator.errors import EmbeddingError


def test_an_import_path_builds_that_embedder_class() -> None:
    embedder = load_embedder("tests.fakes:FakeHashingEmbedder")
    assert embedder.name == "fake-hashing"
    assert embedder.embed(["reset my password"]).shape == (1, embedder.dimension)


@pytest.mark.parametrize(
    ("spec", "says"),
    [("tests.fakes:NoSuchEmbedder", "NoSuchEmbedder"), ("no_such_module_xyz:Embedder", "no_such_module_xyz")],
)
def test_a_bad_import_path_is_a_clear_error(spec: str, says: str) -> None:
    with pytest.raises(EmbeddingError, match=says):
        load_embedder(spec)


def test_something_that_is_not_an_embedder_is_refused() -> None:
    with pytest.raises(EmbeddingError, match="does not build an embedder"):
        load_embedder("collections:OrderedDict")
