"""What the portal's pages and its clients of the services agree on (`ports`)."""
