"""kbcurator: crawl and chunk a help center, check it, and publish a versioned vector index."""

__version__ = "0.2.0"
