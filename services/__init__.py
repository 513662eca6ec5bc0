"""The three Channelkeep services. None imports another."""
