"""The recovery-point benchmark's counting: rows acknowledged against rows found after
the restore."""

from benchmarks.recovery_point import tally

ACKED = [("rpo-1-00000", 100.0), ("rpo-1-00001", 101.0), ("rpo-1-00002", 102.0), ("rpo-1-00003", 103.0)]


def test_the_recovery_point_runs_from_the_newest_row_recovered_to_the_loss():
    counted = tally(ACKED, {"rpo-1-00000", "rpo-1-00001"}, loss=103.0)
    assert (counted.recovered, counted.missing, counted.gaps, counted.unacknowledged) == (2, 2, 0, 0)
    assert counted.recovery_point == 2.0


def test_a_row_missing_before_the_newest_recovered_one_is_a_gap():
    counted = tally(ACKED, {"rpo-1-00000", "rpo-1-00002", "rpo-1-00004"}, loss=103.0)
    assert (counted.recovered, counted.missing, counted.gaps, counted.unacknowledged) == (2, 2, 1, 1)
    assert counted.recovery_point == 1.0


def test_nothing_recovered_has_no_recovery_point():
    counted = tally(ACKED, set(), loss=103.0)
    assert (counted.recovered, counted.missing, counted.recovery_point) == (0, 4, None)
