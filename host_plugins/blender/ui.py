"""Menu entries (strip context menu, Strip menu) and the sidebar panel with progress and Cancel."""

from __future__ import annotations

from typing import Any

import bpy

from . import jobs

MENUS = ("SEQUENCER_MT_context_menu", "SEQUENCER_MT_strip")  # both exist in 4.2 ... 5.x


def draw_menu_entry(self: Any, context: Any) -> None:
    layout = self.layout
    layout.separator()
    layout.operator_context = "INVOKE_DEFAULT"
    layout.operator("visage.generate_ambisonics", icon="SPEAKER")


class SEQUENCER_PT_visage(bpy.types.Panel):
    bl_label = "ViSAGe Ambisonics"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "ViSAGe"

    def draw(self, context: Any) -> None:
        layout = self.layout
        layout.operator_context = "INVOKE_DEFAULT"
        layout.operator("visage.generate_ambisonics", icon="SPEAKER")
        running = jobs.active_jobs()
        for entry in running:
            tracker = entry.job.tracker
            row = layout.row(align=True)
            if hasattr(row, "progress"):  # UILayout.progress: Blender 4.0+
                row.progress(factor=tracker.fraction, type="BAR", text=tracker.status_text)
            else:  # pragma: no cover
                row.label(text=tracker.status_text)
            row.operator("visage.cancel_jobs", text="", icon="CANCEL").job_id = entry.job.job_id
        if len(running) > 1:
            layout.operator("visage.cancel_jobs", text="Cancel All", icon="CANCEL").job_id = ""
        for level, text in reversed(jobs.messages):
            layout.label(text=text, icon="ERROR" if level == "ERROR" else "INFO")
