"""The queues under comparison, each behind the same small contract (see base.py)."""
