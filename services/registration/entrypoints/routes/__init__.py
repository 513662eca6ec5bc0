"""The registration API's routers, one per resource."""
