"""Audit: read-only questions a model-risk reviewer asks of git history and MLflow.

What ran where and when (`lineage`), whether every promotion on main still adds up
(`verify`, with its registry of checks in `audit.checks`), and why a decision was made
(`explain`). Nothing here writes to git, MLflow or the registry.
"""
