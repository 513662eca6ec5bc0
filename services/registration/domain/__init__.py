"""The registration rules as plain Python: partners, entitlements, the partner of record."""
