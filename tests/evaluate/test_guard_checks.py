"""The guard's checks on a kept model: the source check (more than 5 points of held-out
source accuracy lost, an exact 5 not counted despite float noise) and the collapse check."""

from __future__ import annotations

from graftlab.evaluate.selection import MAX_SOURCE_DROP, loses_source


def test_more_than_five_points_lost_is_a_loss_and_exactly_five_is_not():
    assert MAX_SOURCE_DROP == 0.05
    assert 0.8 - 0.75 > 0.05 and not loses_source(0.8 - 0.75)  # 0.050000000000000044
    assert not loses_source(0.0) and not loses_source(-0.2)
    assert loses_source(0.0501) and loses_source(0.3)


def test_the_collapse_check_reads_the_mean_over_seeds():
    """With several seeds the guard decides once, on the mean SND: a seed whose student rose
    a little does not outvote one whose student fell further."""
    from graftlab.evaluate.selection import collapsed

    results = {"runs": [{"method": "source_only", "seed": s, "validators": {"snd": 1.0}}
                        for s in (0, 1)],
               "refined": [{"seed": 0, "validators": {"snd": 1.1}},
                           {"seed": 1, "validators": {"snd": 0.7}}], "guard": {}}
    assert not collapsed(results, guard=True)
    assert results["guard"]["refined_snd_rise"] < 0 and not results["guard"]["refined_collapsed"]
