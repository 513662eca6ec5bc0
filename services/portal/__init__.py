"""The partner portal: a server-rendered web front end over the partner APIs."""
