"""Sections of ``Settings`` that a feature reads, defined below both ``kbcurator.settings`` and the features.

``settings.py`` composes them into one ``Settings``; ``kbcurator.analysis`` and ``kbcurator.gaps`` read them. Neither
direction needs the other: settings imports no feature package, and a feature needs no more of settings than its
own section. These modules import nothing from the package but ``kbcurator.records``.
"""
