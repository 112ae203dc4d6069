"""Use cases: what the CLI, the flows and the tests call. Each takes loaded settings once and returns typed results."""
