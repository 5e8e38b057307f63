"""The guard's source check: a drop of more than 5 points of held-out source accuracy, with an
exact 5 points (as float arithmetic computes it) not counted."""

from __future__ import annotations

from graftlab.evaluate.selection import MAX_SOURCE_DROP, loses_source


def test_more_than_five_points_lost_is_a_loss_and_exactly_five_is_not():
    assert MAX_SOURCE_DROP == 0.05
    assert 0.8 - 0.75 > 0.05 and not loses_source(0.8 - 0.75)  # 0.050000000000000044
    assert not loses_source(0.0) and not loses_source(-0.2)
    assert loses_source(0.0501) and loses_source(0.3)
