"""What crosses a service boundary: envelope, topic registry, event models, seller codes.

Import the submodules directly (``from shared.envelope import parse_event``);
nothing is re-exported here so importing ``shared.seller_code`` stays cheap.
"""
