"""The health audit's settings, defined in ``kbcurator.config.health`` (below settings and the features).

Re-exported here for scripts outside the package (bench/); code in the package imports ``kbcurator.config.health``.
"""

from kbcurator.config.health import (
    ContradictionSettings,
    DuplicateSettings,
    HealthSettings,
    ReviewSettings,
    StaleSettings,
)

__all__ = ["ContradictionSettings", "DuplicateSettings", "HealthSettings", "ReviewSettings", "StaleSettings"]
