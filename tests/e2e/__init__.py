"""End-to-end tests: real GitOps controllers against a real test cluster (see cluster.py)."""
