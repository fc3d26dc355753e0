"""GBCS codec: GB Companion Specification messages as bytes and typed values.

Sans-io: no sockets, files or clocks below :mod:`gbcs.cli`. Start with
:func:`gbcs.message.inspect` (decode and verify) and :mod:`gbcs.frame`
(build and encode).
"""

__version__ = "0.1.0"
