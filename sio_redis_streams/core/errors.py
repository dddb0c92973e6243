"""The protocol's one error."""


class MalformedMessage(ValueError):
    """A stream entry or PUB/SUB payload that does not follow the protocol."""
