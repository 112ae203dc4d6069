"""Declared ticket sources, defined in ``kbcurator.config.tickets`` (below settings and the features).

Re-exported here for callers outside the package (flows/, bench/) and the CLI; code in the package imports
``kbcurator.config.tickets``.
"""

from kbcurator.config.tickets import (
    SOLVED_STATUSES,
    ColumnMapping,
    PiiSettings,
    TicketSelection,
    TicketSourceConfig,
    ZendeskTicketOptions,
    bot_failed,
)

__all__ = [
    "SOLVED_STATUSES",
    "ColumnMapping",
    "PiiSettings",
    "TicketSelection",
    "TicketSourceConfig",
    "ZendeskTicketOptions",
    "bot_failed",
]
