"""ZigBee Smart Energy on-air frame codec: bytes <-> typed frames, no I/O, no clocks.

One module per layer, bottom up:

* :mod:`.install_code` - install code CRC and the link key derived from it;
* :mod:`.security` - ZigBee CCM* (level 5, ENC-MIC-32), auxiliary header, HMAC-MMO keys;
* :mod:`.mac` - IEEE 802.15.4 MAC frames with FCS (beacon, data, commands);
* :mod:`.nwk` - ZigBee NWK frames and commands, NWK security;
* :mod:`.aps` - APS data/command/ack frames, Transport Key, fragmentation, ZDO announce;
* :mod:`.zcl` and :mod:`.tunnel` - ZCL header, Smart Energy Tunneling and the GBCS tunnel header;
* :mod:`.air` - whole PSDUs for the frames the HAN stack sends, and :func:`.air.decode_frame`.

Conventions shared by every module:

* EUI-64 (IEEE) addresses and extended PAN IDs are 8-byte ``bytes`` in display order
  (most significant byte first, as GBCS and Wireshark print them); the codec reverses
  them to the little-endian order ZigBee puts on the air.
* Short addresses, PAN IDs, counters and sequence numbers are ``int``; the caller keeps
  every counter (the codec never invents one).
* Malformed input raises :class:`gbcs.errors.DecodeError` naming layer, field and the
  absolute byte offset; a MIC that does not verify raises
  :class:`gbcs.errors.VerificationError`; a value that cannot be encoded raises
  :class:`gbcs.errors.EncodeError`.
"""
