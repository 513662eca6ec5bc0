"""Reading worker alarms out of heartbeats: `partition_stalled:*` and `lso_stuck:*` above 0."""

from __future__ import annotations

from datetime import UTC, datetime

from chassis import heartbeat


def test_only_alarm_gauges_above_zero_are_raised() -> None:
    beats = [
        {
            "_id": "w-1",
            "gauges": {
                "partition_stalled:t.v1:0": 1,
                "partition_stalled:t.v1:1": 0,
                "lso_stuck:commissions.ledger.v1": 3.5,
                "consumer_lag:t.v1": 900,  # lag alone is not an alarm
                "lso_stuck_total": 4,  # another name that only starts alike
            },
        },
        {"_id": "w-2", "gauges": {"lso_stuck:x:2": 0}},
        {"_id": "w-3"},
    ]
    assert heartbeat.alarms(beats) == [
        "w-1 lso_stuck:commissions.ledger.v1=3.5",
        "w-1 partition_stalled:t.v1:0=1",
    ]


def test_a_worker_summary_shows_partitions_and_gauges() -> None:
    at = datetime(2027, 1, 1, tzinfo=UTC)
    beat = {"_id": "w-1", "at": at, "assigned": ["t:0"], "gauges": {"consumer_lag:t": 3}}
    assert heartbeat.summary(beat) == {
        "instance": "w-1",
        "at": at.isoformat(),
        "partitions": ["t:0"],
        "gauges": {"consumer_lag:t": 3},
    }
