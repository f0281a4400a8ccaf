"""The web page of ``visage serve``: an HTTP server (aiohttp) in its own thread and event loop, next to
the OSC transports, over the same job queue, result cache and path rules.

Only `bridge/daemon.py` imports this package, lazily, when the page is on; ``visage.bridge.client`` and
the rest of the bridge never import aiohttp. The page itself is plain HTML/JS/CSS in ``static/``.
"""
