"""Local daemon, OSC protocol, discovery and OTIO batch filling."""
