"""A gaps run whose tickets come from the Zendesk API: the use case reads the source through the index database,
the second run fetches only what changed, and the token stays in the environment it came from."""

from __future__ import annotations

from pathlib import Path

from builders import published_sample
from fakes import FakeHashingEmbedder
from test_zendesk_tickets_api import ENV, TOKEN, FakeZendesk, zendesk  # noqa: F401  (fixture)

from kbcurator.config.tickets import TicketSourceConfig
from kbcurator.settings import Settings
from kbcurator.usecases.gaps import run_gaps

RESET = ["I forgot my password, how do I reset it?", "password reset link never arrives", "reset my password"]
REFUND = ["how long do refunds take", "refund for my last order", "can I get a refund after 30 days"]


def _settings(fake: FakeZendesk, index: str, runs: Path) -> Settings:
    source = TicketSourceConfig.model_validate(
        {
            "id": "helpdesk",
            "format": "zendesk_api",
            "location": fake.site.base,
            # the fake's tickets are dated early 2026: a window that reaches them from today
            "api": {"per_page": 2, "requests_per_minute": 60_000, "window_days": 3650, "start_days": 3650},
        }
    )
    return Settings(index_uri=index, runs_dir=str(runs), tickets=[source])


def test_a_gaps_run_reads_its_tickets_from_the_zendesk_api_incrementally(zendesk, tmp_path) -> None:  # noqa: F811
    store, _, embedder = published_sample(str(tmp_path / "index"))
    for number, text in enumerate([*RESET, *REFUND], start=1):
        zendesk.put(number, subject="", description=text)
    settings = _settings(zendesk, store.uri, tmp_path / "runs")
    first = run_gaps(settings, environ=ENV, embedder=FakeHashingEmbedder(dimension=256))
    assert first.summary["tickets"] == 6 and {t.ticket_id for t in first.tickets} == {str(n) for n in range(1, 7)}
    served = len(zendesk.served)
    zendesk.put(2, subject="", description="the password reset email is still missing")
    second = run_gaps(settings, environ=ENV, embedder=FakeHashingEmbedder(dimension=256))
    assert zendesk.served[served:] == [2]  # only the change was fetched
    assert second.summary["tickets"] == 6  # the update replaced ticket 2, nothing was duplicated
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(encoding="utf-8", errors="replace")
    assert embedder is not None
