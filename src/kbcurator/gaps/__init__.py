"""Knowledge gaps: support tickets clustered into topics the knowledge base does not cover."""
