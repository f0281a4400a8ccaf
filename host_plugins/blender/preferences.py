"""Add-on preferences: daemon address, token, output folder, default guidance; "Test connection"."""

from __future__ import annotations

import os
from typing import Any

import bpy
from bpy.props import BoolProperty, FloatProperty, StringProperty

OUTPUT_FOLDER_NEXT_TO_BLEND = "//visage_ambisonics"


class VisagePreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    daemon_address: StringProperty(  # type: ignore[valid-type]
        name="Daemon",
        description=(
            "'auto' finds the local daemon (its endpoint file, then 127.0.0.1:17730); "
            "or HOST:PORT (UDP port of `visage serve`)"
        ),
        default="auto",
    )
    token: StringProperty(  # type: ignore[valid-type]
        name="Token",
        description="The daemon's --token, if it has one (empty: $VISAGE_TOKEN)",
        default="",
        subtype="PASSWORD",
    )
    output_folder: StringProperty(  # type: ignore[valid-type]
        name="Output Folder",
        description=(
            "Where generated WAV files go; empty: a 'visage_ambisonics' folder next to the .blend file "
            "(or this extension's user folder while the file is unsaved). The daemon must be allowed to "
            "write there (visage serve --allow-dir)"
        ),
        default="",
        subtype="DIR_PATH",
    )
    guidance: FloatProperty(  # type: ignore[valid-type]
        name="Guidance",
        description="Classifier-free guidance scale (2.5 is the model's default)",
        default=2.5,
        min=0.0,
        max=50.0,
    )
    mute_ambix_with_preview: BoolProperty(  # type: ignore[valid-type]
        name="Monitor with Binaural Preview",
        description=(
            "When the daemon also returns a binaural preview, mute the AmbiX strip: Blender plays a "
            "4-channel file as quad speakers, which is wrong for ambisonics"
        ),
        default=True,
    )

    def draw(self, context: Any) -> None:
        layout = self.layout
        row = layout.row(align=True)
        row.prop(self, "daemon_address")
        row.operator("visage.test_connection", icon="LINKED")
        layout.prop(self, "token")
        layout.prop(self, "output_folder")
        layout.prop(self, "guidance")
        layout.prop(self, "mute_ambix_with_preview")


def get(context: Any) -> VisagePreferences:
    return context.preferences.addons[__package__].preferences


def output_folder(context: Any) -> str:
    """The absolute output folder (created if missing)."""
    folder = get(context).output_folder.strip()
    if not folder:
        if bpy.data.filepath:
            folder = OUTPUT_FOLDER_NEXT_TO_BLEND
        else:
            folder = bpy.utils.extension_path_user(__package__, path="outputs", create=True)
    folder = os.path.normpath(bpy.path.abspath(folder))
    os.makedirs(folder, exist_ok=True)
    return folder
