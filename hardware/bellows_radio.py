"""bellows' ControllerApplication as the kit runs it on an EZSP dongle (imports bellows).

bellows' own ``permit()`` runs ``pre_permit`` on every call, ``permit(0)`` included,
and zigpy's ``initialize()`` always ends with ``permit(0)``. On EZSP v5+ that imports a
transient link key holding the well-known key "ZigBeeAlliance09" for every EUI-64
(FF..FF), which EmberZNet keeps for its transient-key timeout (300 s); on v8+ it also sets
the trust-centre policy to ALLOW_JOINS | ALLOW_UNSECURED_REJOINS for ``time_s + 2`` s,
overwriting the install-code-only policy of a permit given meanwhile (bellows 1.2.1,
``zigbee/application.py`` ``permit``, ``ezsp/v5`` and ``ezsp/v8`` ``pre_permit``). GB HAN
joining is install-code-only, so here ``permit(0)`` closes joining without
``pre_permit`` and opening it to every device is refused. Meters are admitted with
bellows' ``permit_with_link_key``: it imports that device's key, sets ALLOW_JOINS |
JOINS_USE_INSTALL_CODE_KEY and opens joining through zigpy's ``permit``, not this one.
"""

from __future__ import annotations

import zigpy.application
import zigpy.types as t
from bellows.zigbee.application import ControllerApplication as BellowsApplication

from hardware.zigpy_han import WellKnownKeyRefused

__all__ = ["KitBellowsApplication"]


class KitBellowsApplication(BellowsApplication):
    """bellows without its well-known-key permit; tells the NCP's own EUI-64."""

    async def permit(self, time_s: int = 60, node: t.EUI64 | str | None = None) -> None:
        """Close joining (``time_s`` 0) as zigpy does, without bellows' ``pre_permit``."""
        if time_s > 0:
            raise WellKnownKeyRefused(
                "the hub radio does not open joining to every device: "
                "a meter is admitted with permit_with_link_key in its CCS01 window"
            )
        await zigpy.application.ControllerApplication.permit(self, 0, node)

    async def ncp_eui64(self) -> t.EUI64:
        """The NCP's own EUI-64 (EZSP getEui64), readable before any network is formed."""
        (eui,) = await self._ezsp.getEui64()
        return t.EUI64(eui)
