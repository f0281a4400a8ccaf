"""Editor integrations: a Blender extension, a DaVinci Resolve script and a REAPER ReaScript.

Import name ``visage.host_plugins`` (folder ``host_plugins/``). ``common/`` is the host-independent logic
(plain Python, no host API, no torch); ``blender/``, ``resolve/`` and ``reaper/`` are the host glue;
``install.py`` builds and installs them (``visage hosts install ...``). See ``host_plugins/README.md``.
"""
