"""KB health: stale, duplicate and contradictory articles, each finding with its evidence.

Detectors are small classes with one public method, ``detect(corpus) -> Iterator[Finding]``; they read an
:class:`~kbcurator.analysis.base.AuditCorpus` (articles, chunks, chunk vectors, what the crawl saw) and never
touch the index, the network or the environment.
"""
