"""Host-independent logic shared by the Blender, Resolve and REAPER integrations.

Plain Python only: no host API, no torch, no numpy, nothing outside the standard library except the
bridge client reached through `host_client`. Each module is copied verbatim into the Blender extension
at build time (`host_plugins.install`), so imports between these modules are relative.
"""
