"""labgrid places as HAN backends: an acquired place's serial port as a pyserial URL.

A dongle plugged into another machine is shared through labgrid: that
machine's exporter publishes the dongle (a ``USBSerialPort``) to the
coordinator as a ``NetworkSerialPort`` (host, TCP port, protocol) served by
ser2net, and ``labgrid-client -p PLACE acquire`` reserves the place holding
it. ``pytest --han labgrid:PLACE`` then talks to the dongle over TCP through
pyserial: protocol ``rfc2217`` becomes ``rfc2217://HOST:PORT`` and ``raw``
becomes ``socket://HOST:PORT``.

ser2net's RFC 2217 mode (the one labgrid's exporter starts for a
``USBSerialPort``) was seen to hang zigpy's serial layer, so the raw TCP form
is supported too: run ser2net in raw mode yourself and declare the port in the
exporter as a ``NetworkSerialPort`` with ``protocol: raw`` (see
``hardware/labgrid/README.md``).

labgrid is an optional extra (``pip install 'gbcs-hil[labgrid]'``); nothing
here imports it until a place is resolved.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from gbcs.errors import GbcsError

__all__ = [
    "DEFAULT_COORDINATOR",
    "LABGRID_HINT",
    "SERIAL_PORT_CLASS",
    "choose_serial_port",
    "resolve_place",
    "serial_url",
    "url_for_resource",
]

LABGRID_HINT = "pip install 'gbcs-hil[labgrid]'"
DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid's own default (LG_COORDINATOR overrides)
SERIAL_PORT_CLASS = "NetworkSerialPort"  # what an exported USBSerialPort is on the coordinator
PREFERRED_NAME = "han"  # the port to use when a place has several
_SCHEMES = {"rfc2217": "rfc2217", "raw": "socket"}


def serial_url(host: str, port: int, protocol: str = "rfc2217") -> str:
    """The pyserial URL of a network serial port: ``rfc2217://`` or raw TCP ``socket://``."""
    scheme = _SCHEMES.get(protocol)
    if scheme is None:
        raise GbcsError(
            f"serial port protocol {protocol!r} is not supported (rfc2217 or raw expected)"
        )
    if not host:
        raise GbcsError("serial port has no host")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise GbcsError(f"serial port on {host} has no usable TCP port ({port!r})")
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # IPv6 literal
    return f"{scheme}://{host}:{port}"


def url_for_resource(resource: Any) -> str:
    """The URL of a labgrid ``NetworkSerialPort`` (or anything with host, port and protocol).

    Accepts the resource object or its parameters as a mapping, as the
    coordinator hands them out.
    """
    if isinstance(resource, Mapping):
        get = resource.get
    else:

        def get(key: str, default: Any = None) -> Any:
            return getattr(resource, key, default)

    return serial_url(get("host") or "", get("port"), get("protocol") or "rfc2217")


def choose_serial_port(place: str, ports: Mapping[str, Any]) -> tuple[str, Any]:
    """The one serial port of a place: the only one, or the one named ``han``."""
    if not ports:
        raise GbcsError(
            f"the place has no {SERIAL_PORT_CLASS}: add the dongle with "
            f"labgrid-client -p {place} add-match EXPORTER/GROUP/{SERIAL_PORT_CLASS}"
        )
    if len(ports) == 1:
        return next(iter(ports.items()))
    if PREFERRED_NAME in ports:
        return PREFERRED_NAME, ports[PREFERRED_NAME]
    raise GbcsError(
        f"the place has several serial ports ({', '.join(sorted(ports))}); name "
        f"the dongle's {PREFERRED_NAME!r} (labgrid-client -p {place} add-named-match "
        f"EXPORTER/GROUP/{SERIAL_PORT_CLASS}/NAME {PREFERRED_NAME})"
    )


def resolve_place(place: str, *, coordinator: str | None = None) -> str:
    """The serial URL of the dongle in an acquired labgrid place.

    Asks the coordinator (``coordinator``, else ``LG_COORDINATOR``, else
    labgrid's default) for the place, which this host and user must have
    acquired, and maps its serial port to a URL. When the exporter is
    isolated (or ``LG_PROXY`` is set) labgrid's SSH forwarding is used, so the
    URL then points at localhost. Errors do not start with the place: the
    plugin puts ``--han labgrid:PLACE:`` before them.
    """
    try:
        from labgrid.remote.client import Error as LabgridError
        from labgrid.remote.client import start_session
    except ImportError:
        raise GbcsError(f"labgrid is not installed ({LABGRID_HINT})") from None
    address = coordinator or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR
    try:
        session = start_session(address)
    except (LabgridError, OSError) as e:
        reason = str(e).removeprefix("Error: ")
        raise GbcsError(f"labgrid coordinator {address} is not reachable: {reason}") from None
    try:
        try:
            found = session.get_place(place)
            resources = session.get_target_resources(found)  # refuses a place not acquired
        except LabgridError as e:
            reason = str(e).removeprefix("Error: ")
            hint = f" (labgrid-client -p {place} acquire)" if "not acquired" in reason else ""
            raise GbcsError(f"{reason}{hint}") from None  # labgrid's reason names the place
        ports = {name: e for (name, cls), e in resources.items() if cls == SERIAL_PORT_CLASS}
        name, entry = choose_serial_port(place, ports)
        if not entry.avail:
            raise GbcsError(
                f"serial port {name} is not available (dongle unplugged or its exporter gone?)"
            )
        return _reachable_url(entry, name)
    finally:
        session.loop.run_until_complete(session.stop())
        session.loop.run_until_complete(session.close())


def _reachable_url(entry: Any, name: str) -> str:
    """The URL for a coordinator resource entry, through an SSH forward when needed."""
    extra = dict(getattr(entry, "extra", None) or {})
    if not (extra.get("proxy_required") or os.environ.get("LG_PROXY")):
        return url_for_resource(entry.args)
    from labgrid.resource import NetworkSerialPort
    from labgrid.util.proxy import proxymanager

    resource = NetworkSerialPort(None, name, **entry.args)
    resource.extra = extra
    host, port = proxymanager.get_host_and_port(resource)
    return serial_url(host, port, resource.protocol)
