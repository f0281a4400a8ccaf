// The camera-direction control: a top view for yaw and a side view for pitch, each a canvas that can be
// dragged or driven with the arrow keys. AmbiX convention: yaw positive turns left, pitch positive looks up.

import { clampPitch, wrapYaw } from "./format.js";

const STEP_DEG = 5;
const FINE_STEP_DEG = 1;
const COARSE_STEP_DEG = 15;
const FIELD_OF_VIEW_DEG = 60; // the wedge drawn for the camera; only a picture

function colours(canvas) {
  const style = getComputedStyle(canvas);
  const read = (name) => style.getPropertyValue(name).trim();
  return {
    ring: read("--dial-ring"),
    text: read("--muted"),
    accent: read("--accent"),
    wedge: read("--dial-wedge"),
    head: read("--fg"),
  };
}

function prepare(canvas) {
  const ctx = canvas.getContext("2d");
  const ratio = window.devicePixelRatio || 1;
  const width = Number(canvas.getAttribute("width"));
  const height = Number(canvas.getAttribute("height"));
  if (canvas.width !== width * ratio) {
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
  }
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return { ctx, width, height };
}

function label(ctx, text, x, y, colour) {
  ctx.fillStyle = colour;
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, x, y);
}

function drawCamera(ctx, cx, cy, radius, angle, c) {
  // angle: canvas radians of the looking direction
  const half = (FIELD_OF_VIEW_DEG / 2) * (Math.PI / 180);
  ctx.fillStyle = c.wedge;
  ctx.beginPath();
  ctx.moveTo(cx, cy);
  ctx.arc(cx, cy, radius, angle - half, angle + half);
  ctx.closePath();
  ctx.fill();
  ctx.strokeStyle = c.accent;
  ctx.lineWidth = 2.5;
  ctx.beginPath();
  ctx.moveTo(cx, cy);
  ctx.lineTo(cx + radius * Math.cos(angle), cy + radius * Math.sin(angle));
  ctx.stroke();
  ctx.fillStyle = c.accent;
  ctx.beginPath();
  ctx.arc(cx + radius * Math.cos(angle), cy + radius * Math.sin(angle), 6, 0, 2 * Math.PI);
  ctx.fill();
}

/** Top view: front is up on the screen, left is left; yaw θ looks at (-sin θ, -cos θ) in canvas axes. */
function drawYaw(canvas, yaw) {
  const { ctx, width, height } = prepare(canvas);
  const c = colours(canvas);
  const cx = width / 2;
  const cy = height / 2;
  const radius = Math.min(width, height) / 2 - 22;
  ctx.strokeStyle = c.ring;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.arc(cx, cy, radius, 0, 2 * Math.PI);
  ctx.stroke();
  label(ctx, "front 0°", cx, 9, c.text);
  label(ctx, "back", cx, height - 9, c.text);
  label(ctx, "L", 8, cy, c.text);
  label(ctx, "R", width - 8, cy, c.text);
  const rad = (wrapYaw(yaw) * Math.PI) / 180;
  drawCamera(ctx, cx, cy, radius, Math.atan2(-Math.cos(rad), -Math.sin(rad)), c);
  ctx.fillStyle = c.head; // the listener's head, nose to the front
  ctx.beginPath();
  ctx.arc(cx, cy, 7, 0, 2 * Math.PI);
  ctx.fill();
  ctx.beginPath();
  ctx.moveTo(cx - 3, cy - 6);
  ctx.lineTo(cx, cy - 11);
  ctx.lineTo(cx + 3, cy - 6);
  ctx.fill();
}

/** Side view: front is to the right, up is up; pitch φ looks at (cos φ, -sin φ) in canvas axes. */
function drawPitch(canvas, pitch) {
  const { ctx, width, height } = prepare(canvas);
  const c = colours(canvas);
  const cx = 26;
  const cy = height / 2;
  const radius = Math.min(width - cx - 12, height / 2 - 18);
  ctx.strokeStyle = c.ring;
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  ctx.arc(cx, cy, radius, -Math.PI / 2, Math.PI / 2);
  ctx.stroke();
  label(ctx, "up", cx, 9, c.text);
  label(ctx, "down", cx, height - 9, c.text);
  label(ctx, "front", cx + radius - 4, cy + 14, c.text);
  const rad = (clampPitch(pitch) * Math.PI) / 180;
  drawCamera(ctx, cx, cy, radius, -rad, c);
  ctx.fillStyle = c.head;
  ctx.beginPath();
  ctx.arc(cx, cy, 7, 0, 2 * Math.PI);
  ctx.fill();
}

/** The yaw for a point (x, y) on the top view, relative to its centre: AmbiX, left positive. */
export function yawAt(dx, dy) {
  return wrapYaw((Math.atan2(-dx, -dy) * 180) / Math.PI);
}

/** The pitch for a point on the side view, relative to its centre: up positive. */
export function pitchAt(dx, dy) {
  return clampPitch((Math.atan2(-dy, Math.max(dx, 0)) * 180) / Math.PI);
}

function keyDelta(event) {
  const step = event.shiftKey ? FINE_STEP_DEG : STEP_DEG;
  switch (event.key) {
    case "ArrowLeft":
      return { yaw: step };
    case "ArrowRight":
      return { yaw: -step };
    case "ArrowUp":
      return { pitch: step };
    case "ArrowDown":
      return { pitch: -step };
    case "PageUp":
      return { yaw: COARSE_STEP_DEG };
    case "PageDown":
      return { yaw: -COARSE_STEP_DEG };
    default:
      return null;
  }
}

/**
 * Wire the two canvases to a direction value. `onChange(yaw, pitch)` is called on every change made with the
 * dials; `set(yaw, pitch)` redraws them from the number fields.
 */
export function directionDial(yawCanvas, pitchCanvas, onChange) {
  let yaw = 0;
  let pitch = 0;
  let enabled = true;

  function redraw() {
    drawYaw(yawCanvas, yaw);
    drawPitch(pitchCanvas, pitch);
    const rounded = Math.round(wrapYaw(yaw));
    yawCanvas.setAttribute("aria-valuenow", String(rounded));
    yawCanvas.setAttribute("aria-valuetext", `${rounded}° (${rounded > 0 ? "left" : rounded < 0 ? "right" : "front"})`);
    pitchCanvas.setAttribute("aria-valuenow", String(Math.round(pitch)));
    pitchCanvas.setAttribute("aria-valuetext", `${Math.round(pitch)}° (${pitch > 0 ? "up" : pitch < 0 ? "down" : "level"})`);
  }

  function update(newYaw, newPitch) {
    if (!enabled) return;
    yaw = wrapYaw(Math.round(newYaw));
    pitch = clampPitch(Math.round(newPitch));
    redraw();
    onChange(yaw, pitch);
  }

  function dragWith(canvas, pick) {
    const at = (event) => {
      const box = canvas.getBoundingClientRect();
      const centreX = canvas === yawCanvas ? box.width / 2 : 26;
      pick(event.clientX - box.left - centreX, event.clientY - box.top - box.height / 2);
    };
    canvas.addEventListener("pointerdown", (event) => {
      if (!enabled) return;
      canvas.setPointerCapture(event.pointerId);
      canvas.focus();
      at(event);
      event.preventDefault();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (canvas.hasPointerCapture(event.pointerId)) at(event);
    });
  }

  dragWith(yawCanvas, (dx, dy) => update(yawAt(dx, dy), pitch));
  dragWith(pitchCanvas, (dx, dy) => update(yaw, pitchAt(dx, dy)));

  for (const canvas of [yawCanvas, pitchCanvas]) {
    canvas.addEventListener("keydown", (event) => {
      if (event.key === "Home") {
        update(0, 0);
        event.preventDefault();
        return;
      }
      const delta = keyDelta(event);
      if (!delta) return;
      update(yaw + (delta.yaw || 0), pitch + (delta.pitch || 0));
      event.preventDefault();
    });
  }

  const scheme = window.matchMedia("(prefers-color-scheme: dark)");
  scheme.addEventListener("change", redraw);
  redraw();

  return {
    set(newYaw, newPitch) {
      yaw = wrapYaw(newYaw);
      pitch = clampPitch(newPitch);
      redraw();
    },
    setEnabled(value) {
      enabled = value;
      for (const canvas of [yawCanvas, pitchCanvas]) {
        canvas.classList.toggle("disabled", !value);
        canvas.setAttribute("aria-disabled", String(!value));
      }
    },
  };
}
