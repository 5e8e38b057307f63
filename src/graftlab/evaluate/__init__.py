"""Evaluation: label-free validators for domain adaptation, and the comparison's summary and
verdict (decisions computed as data; the report turns them into prose)."""
