"""The scale benchmark's corpus generator and stand-in embedder (bench/scale_corpus.py, bench/scale_embedder.py).

The benchmark's figures are only worth something if the grown corpus is what it says: deterministic, replicas
that differ from their originals in the planted ways and still parse as distinct articles, and a "1% edit"
that changes 1% of the articles' text.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path

import numpy as np

from kbcurator.ingest import read_articles
from kbcurator.settings import SourceConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from scale_corpus import SourceTree, edit_share, grow, replicate_markdown, restore
from scale_embedder import LexicalHashingEmbedder

VAULT = """---
title: Export your Bitwarden vault
permalink: /export-vault/
---

Bitwarden lets you export your vault in 2 formats. See [the guide]({{ site.baseurl }}/import/) first.

## Export from the web app

Open the web app and choose **Tools** > **Export vault**. The file is ready within 30 seconds.

{% callout info %}
An export made in Chrome 120 is not encrypted.
{% endcallout %}

## Export from the desktop app

Use `bw export --format json` on Windows 11 or macOS 14.

```
bw export --format csv
```

## Keep the file safe

Delete the file after 7 days, as the [Bitwarden security team](https://bitwarden.com/help/security/) advises.
"""

SEARCH = """---
title: Set DuckDuckGo as your search engine in Safari
---

DuckDuckGo can be your default search engine in Safari 17 on iOS.

## On iPhone

Open Settings, tap Safari, then Search Engine, and pick DuckDuckGo. It takes 3 taps.

## On Mac

Open Safari, then Settings, then Search, and pick DuckDuckGo from the list of 5 engines.
"""


def _tree(root: Path, files: dict[str, str]) -> SourceTree:
    collection = root / "_docs"
    for relative, text in files.items():
        (collection / relative).parent.mkdir(parents=True, exist_ok=True)
        (collection / relative).write_text(text, encoding="utf-8")
    return SourceTree("help", collection, "https://help.example.com/", permalink="/:path/")


def _headings(markdown: str) -> list[str]:
    return re.findall(r"^## (.+)$", markdown, flags=re.M)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _articles(folder: Path) -> list:
    source = SourceConfig(
        id="help",
        kind="folder",
        location=str(folder),
        include=["**/*.md"],
        base_url="https://help.example.com/",
        permalink="/:path/",
    )
    articles, rejected = read_articles(source)
    assert not rejected
    return articles


def test_growing_is_deterministic_and_writes_scale_times_the_articles(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "base", {"vault/export.md": VAULT, "search/safari.md": SEARCH})
    first = grow([tree], 4, tmp_path / "a")
    second = grow([tree], 4, tmp_path / "b")
    assert first == second == {"files": 8, "replicas": 6, "reordered": first["reordered"]}
    assert _snapshot(tmp_path / "a") == _snapshot(tmp_path / "b")
    grow([tree], 4, tmp_path / "c", seed=8)
    assert _snapshot(tmp_path / "a") != _snapshot(tmp_path / "c")

    articles = _articles(tmp_path / "a" / "help")
    assert len(articles) == 8
    assert len({a.article_id for a in articles}) == 8  # each replica has its own URL, so its own id
    urls = {a.url for a in articles}
    assert "https://help.example.com/r003/search/safari/" in urls
    # A front-matter permalink moves under the replica's folder too.
    assert "https://help.example.com/r003/export-vault/" in urls
    assert "https://help.example.com/export-vault/" in urls


def test_a_replica_differs_from_its_original_in_the_planted_ways_only() -> None:
    replica, reordered = replicate_markdown(VAULT, 3, random.Random(1))
    assert reordered
    # Sections reordered (the intro stays first): each section is followed by what it holds that is not prose.
    markers = ["{% callout info %}", "`bw export --format json`", "(https://bitwarden.com/help/security/)"]
    order = [replica.index(marker) for marker in markers]
    assert sorted(order) != order
    assert replica.index("{{ site.baseurl }}/import/)") < min(order)
    assert len(_headings(replica)) == len(_headings(VAULT))
    # Renamed products, everywhere in the prose and the title.
    assert "Bitwarden" not in replica
    assert "Chrome" not in replica and "Windows" not in replica
    # Changed numbers: each + the replica index.
    assert re.search(r"\b33\b", replica)  # 30 seconds
    assert re.search(r"\b10\b", replica)  # 7 days -> 10
    assert not re.search(r"\b30\b", replica)
    # What is not prose is kept: Liquid, link targets, code.
    assert "{{ site.baseurl }}/import/)" in replica
    assert "{% callout info %}" in replica and "{% endcallout %}" in replica
    assert "`bw export --format json`" in replica
    assert "```\nbw export --format csv\n```" in replica
    assert "permalink: /r003/export-vault/" in replica


def test_a_replica_shares_few_words_with_its_original() -> None:
    replica, _ = replicate_markdown(SEARCH, 2, random.Random(1))
    words = set(re.findall(r"[a-z]+", SEARCH.lower()))
    kept = set(re.findall(r"[a-z]+", replica.lower())) & words
    assert len(kept) < 0.6 * len(words)


def test_the_one_percent_edit_changes_that_share_of_articles_and_can_be_undone(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "base", {"vault/export.md": VAULT, "search/safari.md": SEARCH})
    grow([tree], 100, tmp_path / "kb")  # 200 articles
    folder = tmp_path / "kb" / "help"
    before = {a.article_id: a.content_hash for a in _articles(folder)}
    files_before = _snapshot(folder)

    changed = edit_share(folder, 0.01, seed=3)

    assert len(changed) == 2
    after = {a.article_id: a.content_hash for a in _articles(folder)}
    assert after.keys() == before.keys()
    assert sum(after[k] != before[k] for k in before) == 2  # the text changed, not just list numbering
    restore(changed)
    assert _snapshot(folder) == files_before


def test_the_stand_in_embedder_is_deterministic_and_unit_norm() -> None:
    texts = ["Export your vault to a CSV file", "export the vault as a csv file", "Turn on Duck Player", ""]
    first = LexicalHashingEmbedder().embed(texts)
    second = LexicalHashingEmbedder().embed(texts)
    assert first.dtype == np.float32 and first.shape == (4, LexicalHashingEmbedder.dimension)
    assert np.array_equal(first, second)
    assert np.allclose(np.linalg.norm(first[:3], axis=1), 1.0, atol=1e-6)
    assert not first[3].any()  # nothing to hash: a zero row, never NaN
    assert first[0] @ first[1] > first[0] @ first[2]  # texts sharing words land closer
