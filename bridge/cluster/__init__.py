"""Generation on a Ray cluster (``--ray ADDRESS``): the connection, the shot actors, the shared-filesystem
preflight and the `ShotGenerator` that spreads shots over the actors.

Nothing in ``visage.bridge`` imports this package when it is imported; Ray itself is imported only when a
session connects (``pip install 'visage[ray]'``).
"""
