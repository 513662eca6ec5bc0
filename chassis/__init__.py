"""The service chassis: the cross-cutting plumbing every Channelkeep service runs on.

Not a service and not part of the contract: health, readiness, metrics, errors,
auth, Kafka and MongoDB wiring. Services import it; it imports no service.
"""
