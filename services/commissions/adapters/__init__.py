"""Adapters of the commissions service: MongoDB storage, Kafka publishing, registration auth."""
