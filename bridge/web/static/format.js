// Pure helpers: angles in the AmbiX convention and the words and numbers the page shows.

/** Yaw in degrees, wrapped to [-180, 180) as the daemon normalises it. */
export function wrapYaw(deg) {
  const wrapped = ((((deg + 180) % 360) + 360) % 360) - 180;
  return Object.is(wrapped, -0) ? 0 : wrapped;
}

export function clampPitch(deg) {
  return Math.max(-90, Math.min(90, deg));
}

/** Plain words for a direction: yaw positive is to the left, pitch positive is up (AmbiX). */
export function directionWords(yaw, pitch) {
  const y = wrapYaw(yaw);
  const a = Math.abs(y);
  let side;
  if (a < 5) side = "front";
  else if (a > 175) side = "behind";
  else {
    const lr = y > 0 ? "left" : "right";
    if (a < 67.5) side = `front-${lr}`;
    else if (a <= 112.5) side = lr;
    else side = `behind-${lr}`;
  }
  if (Math.abs(pitch) < 5) return side;
  return `${side}, ${pitch > 0 ? "up" : "down"} ${Math.abs(Math.round(pitch))}°`;
}

/**
 * A number typed by a person: null when the field is empty, NaN when the text is no plain number.
 * The decimal mark may be a dot or a comma ("1,5" is 1.5, as many editors type it; a browser's number
 * field would read it as 15); grouping marks, exponents and anything else are refused.
 */
export function parseDecimal(text) {
  const trimmed = String(text).trim();
  if (trimmed === "") return null;
  if (!/^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)$/.test(trimmed)) return NaN;
  return Number(trimmed.replace(",", "."));
}

export function seconds(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "";
  return `${Number(value).toFixed(value < 10 ? 2 : 1).replace(/\.?0+$/, "")} s`;
}

export function timeLeft(etaS) {
  if (etaS === null || etaS === undefined) return "";
  if (etaS < 60) return "less than a minute left";
  const minutes = Math.round(etaS / 60);
  if (minutes < 90) return `about ${minutes} min left`;
  return `about ${(etaS / 3600).toFixed(1)} h left`;
}

/** A byte count as file managers show it (powers of 1000): 1000 -> "1 kB", 4294967296 -> "4.3 GB". */
export function fileSize(bytes) {
  if (bytes < 1000) return `${bytes} bytes`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value < 10 ? Number(value.toFixed(1)) : Math.round(value)} ${units[unit]}`;
}

/** A path as pasted: without surrounding quotes (Windows' "Copy as path", shells) or a file:// URL's dress. */
export function typedPath(text) {
  const path = text.trim().replace(/^(["'])(.+)\1$/, "$2");
  if (!path.startsWith("file://")) return path;
  try {
    const url = new URL(path);
    if (url.host && url.host !== "localhost") return path; // another machine's file: the daemon refuses it
    const local = decodeURIComponent(url.pathname);
    return /^\/[A-Za-z]:\//.test(local) ? local.slice(1) : local; // file:///C:/clip.mp4 on Windows
  } catch {
    return path; // not a URL after all: the daemon says what is wrong with it
  }
}

export function basename(path) {
  return String(path || "").split(/[\\/]/).pop();
}

export const STATE_WORDS = {
  accepted: "accepted",
  queued: "waiting",
  running: "running",
  done: "done",
  error: "failed",
  cancelled: "cancelled",
  finished: "finished",
};

export const ACTIVE_STATES = new Set(["accepted", "queued", "running"]);
