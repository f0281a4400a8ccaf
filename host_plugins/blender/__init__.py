"""ViSAGe Ambisonics for Blender's Video Sequencer (Blender 4.2 LTS ... 5.x).

"Generate Ambisonics" in the strip context menu and the Strip menu sends each selected movie strip's
range, with a fixed direction or the scene camera's per-frame direction, to the local ViSAGe daemon
and places the returned AmbiX WAV as a sound strip under the shot.

This folder is the extension's source; the installable zip also holds ``common/`` (the project's
host-independent logic), ``vendor/visage_bridge/`` (the daemon client) and the python-osc wheel, put
there by ``visage hosts install blender`` (``host_plugins/install.py``). Never import torch here.
"""

from __future__ import annotations

import bpy

from . import jobs, operators, preferences, ui

classes = (
    preferences.VisagePreferences,
    operators.VISAGE_OT_generate_ambisonics,
    operators.VISAGE_OT_cancel_jobs,
    operators.VISAGE_OT_test_connection,
    ui.SEQUENCER_PT_visage,
)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)
    for name in ui.MENUS:
        menu = getattr(bpy.types, name, None)
        if menu is not None:
            menu.append(ui.draw_menu_entry)


def unregister() -> None:
    jobs.shutdown()  # cancels jobs, joins their threads, unregisters the timer
    for name in reversed(ui.MENUS):
        menu = getattr(bpy.types, name, None)
        if menu is not None:
            menu.remove(ui.draw_menu_entry)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
