"""``python -m gbcs.asn1``: regenerate the parsed-module cache after editing gbcs.asn."""

from gbcs.asn1 import write_parsed_cache

print(write_parsed_cache())
