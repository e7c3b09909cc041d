"""Regression verdicts: hold one run against another (compare.py), keep runs as baselines per
board identity (baselines.py), and run two revisions interleaved on the same boards (ab.py)."""
