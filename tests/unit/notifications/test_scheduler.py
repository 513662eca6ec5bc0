"""The daily reminder scheduler: which days it runs, including missed ones."""

from __future__ import annotations

import datetime as dt

from services.notifications.service_layer.background import DailyReminders


def scheduler(catch_up: int = 3) -> DailyReminders:
    return DailyReminders(
        reminder_pass=None,  # type: ignore[arg-type]
        state=None,  # type: ignore[arg-type]
        clock=None,  # type: ignore[arg-type]
        run_hour_utc=6,
        catch_up_days=catch_up,
    )


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2027, 3, day, hour, tzinfo=dt.UTC)


def test_first_start_runs_today_once_the_hour_has_come() -> None:
    assert scheduler().days_due(at(10, 5), None) == []
    assert scheduler().days_due(at(10, 7), None) == [dt.date(2027, 3, 10)]


def test_a_day_already_run_is_not_run_again() -> None:
    assert scheduler().days_due(at(10, 7), dt.date(2027, 3, 10)) == []
    assert scheduler().days_due(at(11, 5), dt.date(2027, 3, 10)) == []


def test_missed_days_are_caught_up_within_the_limit() -> None:
    assert scheduler().days_due(at(12, 7), dt.date(2027, 3, 10)) == [
        dt.date(2027, 3, 11),
        dt.date(2027, 3, 12),
    ]
    assert scheduler(catch_up=3).days_due(at(20, 7), dt.date(2027, 3, 10)) == [
        dt.date(2027, 3, 18),
        dt.date(2027, 3, 19),
        dt.date(2027, 3, 20),
    ]
