"""Worker metrics travel in heartbeats and render as Prometheus families on the API."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from chassis.lso import output_topics
from chassis.metrics import HttpMetrics, WorkerCounters, render


def test_worker_counters_gauges_and_histograms_render_per_instance() -> None:
    counters = WorkerCounters()
    counters.inc("records_total", topic="checkout.orders.v1")
    counters.inc("records_total", topic="checkout.orders.v1")
    counters.inc("dead_letters_total", topic="checkout.orders.v1", reason="unparsable")
    counters.set_gauge("consumer_lag:checkout.orders.v1", 42)
    counters.set_gauge("assigned_partitions", 6)
    counters.observe("batch_seconds", 0.02)
    counters.observe("batch_seconds", 3.0)
    beat = {
        "_id": "worker-1",
        "counters": counters.snapshot(),
        "gauges": counters.gauges,
        "histograms": counters.histograms,
    }
    text = render(HttpMetrics("registration"), "registration", [beat]).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}

    [records] = families["channelkeep_worker_records"].samples
    assert records.value == 2 and records.labels["topic"] == "checkout.orders.v1"
    [dead] = families["channelkeep_worker_dead_letters"].samples
    assert dead.labels["reason"] == "unparsable" and dead.labels["instance"] == "worker-1"
    [lag] = families["channelkeep_worker_consumer_lag"].samples
    assert lag.value == 42 and lag.labels["topic"] == "checkout.orders.v1"
    batch = families["channelkeep_worker_batch_seconds"].samples
    count = next(s for s in batch if s.name.endswith("_count"))
    le_25ms = next(s for s in batch if s.labels.get("le") == "0.025")
    assert count.value == 2 and le_25ms.value == 1


def test_a_gauge_keyed_by_topic_and_partition_renders_both_as_labels() -> None:
    counters = WorkerCounters()
    counters.set_gauge("lso_lag:commissions.ledger.v1:4", 120)
    counters.set_gauge("lso_stuck:commissions.ledger.v1:4", 1)
    counters.set_gauge("lso_stuck:commissions.ledger.v1:5", 0)
    beat = {"_id": "commissions-0", "counters": [], "gauges": counters.gauges}
    text = render(HttpMetrics("commissions"), "commissions", [beat]).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}

    [lag] = families["channelkeep_worker_lso_lag"].samples
    assert lag.value == 120
    assert lag.labels == {
        "service": "commissions",
        "instance": "commissions-0",
        "topic": "commissions.ledger.v1",
        "partition": "4",
    }
    stuck = {
        s.labels["partition"]: s.value for s in families["channelkeep_worker_lso_stuck"].samples
    }
    assert stuck == {"4": 1, "5": 0}


def test_a_worker_watches_the_lso_of_what_it_produces_to_and_of_its_dead_letter_topics() -> None:
    topics = ["in.a", "in.b", "out.ledger"]
    assert output_topics(topics, ["in.a", "in.b"]) == ["out.ledger", "in.a.dlq", "in.b.dlq"]


def test_a_counter_named_after_its_service_is_exported_under_that_very_name() -> None:
    """CONTRACT 6.8: operators alert on `notifications_isolation_violations_total`."""
    counters = WorkerCounters()
    counters.inc("notifications_isolation_violations_total", type="renewal_reminder")
    counters.inc("deliveries_total", type="welcome")
    beat = {"_id": "worker-1", "counters": counters.snapshot()}
    text = render(HttpMetrics("notifications"), "notifications", [beat]).decode()
    assert "\nnotifications_isolation_violations_total{" in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [refused] = families["notifications_isolation_violations"].samples
    assert refused.name == "notifications_isolation_violations_total"
    assert refused.value == 1 and refused.labels["type"] == "renewal_reminder"
    assert "channelkeep_worker_deliveries" in families
    # Another service's worker cannot claim a notifications name.
    text = render(HttpMetrics("commissions"), "commissions", [beat]).decode()
    assert "channelkeep_worker_notifications_isolation_violations_total{" in text
