"""Developer tooling: the embedded servers, `./dev up`, the mail sink. Never in images."""
