"""``python -m gbcs.asn1``: regenerate the parsed-module cache after editing gbcs.asn."""

import argparse

from gbcs.asn1 import write_parsed_cache

argparse.ArgumentParser(
    prog="python -m gbcs.asn1",
    description="Parse gbcs/asn1/gbcs.asn again and rewrite its cache, gbcs.asn.parsed "
    "(the kit reads the cache while it matches the source's SHA-256).",
).parse_args()
print(write_parsed_cache())
