"""Local daemon, OSC protocol, discovery and OTIO batch filling.

Import what you need from the submodules (``visage.bridge.client`` for host scripts); this package
imports nothing heavy, and nothing in it imports torch.
"""

from .const import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION"]
