// The page's glue: session and token, the new-job form, live updates from /api/events, queue and result.

import { ApiError, getJson, mediaUrl, openSession, postJson, postText, storeToken, storedToken, upload } from "./api.js";
import { directionDial } from "./direction_dial.js";
import { basename, clampPitch, directionWords, fileSize, parseDecimal, seconds, typedPath, wrapYaw } from "./format.js";
import { queueView } from "./queue_view.js";
import { resultView } from "./result_view.js";

const $ = (id) => document.getElementById(id);
const RECONNECT_MS = 2000;

// Form fields by the name the daemon gives in error.field.
const FIELD_INPUTS = {
  media: "media-path",
  path: "media-path",
  start_s: "start-s",
  end_s: "end-s",
  yaw_deg: "yaw-deg",
  pitch_deg: "pitch-deg",
  curve: "curve-file",
  seed: "seed",
  guidance_scale: "guidance-scale",
  guidance_mode: "guidance-mode",
  output: "output",
};

const state = {
  session: null,
  mediaPath: null, // the video opened in the preview
  duration: null, // of the opened video, seconds
  curvePath: null,
  selectJob: null, // id of the job this page submitted last: shown in the result panel when it appears
  events: null,
  syncing: null, // events that arrived while the job list was being fetched
};

// ---------------------------------------------------------------- session and token

function showTokenPanel(message) {
  $("app").hidden = true;
  $("token-panel").hidden = false;
  $("token-error").textContent = message || "";
  $("daemon-info").textContent = "Waiting for the access token.";
  $("token").focus();
}

function handleUnauthorised(error) {
  if (error instanceof ApiError && error.status === 401) {
    const hadToken = Boolean(storedToken());
    storeToken("");
    if (state.events) state.events.close();
    showTokenPanel(hadToken ? "That token was not accepted. Check it and try again." : "");
    return true;
  }
  return false;
}

async function start() {
  let session;
  try {
    session = await openSession();
  } catch (error) {
    if (handleUnauthorised(error)) return;
    $("daemon-info").textContent = `The daemon cannot be reached: ${error.message}. Is “visage serve” running?`;
    $("daemon-info").classList.add("error");
    setTimeout(start, RECONNECT_MS * 2);
    return;
  }
  const first = state.session === null; // a reconnection keeps what the user chose
  state.session = session;
  showDaemonInfo();
  $("token-panel").hidden = true;
  $("app").hidden = false;
  showAllowedDirs(session.allowed_dirs || []);
  if (session.convention) $("convention").title = session.convention;
  const defaults = session.defaults || {};
  if (first && defaults.guidance_scale !== undefined) $("guidance-scale").value = defaults.guidance_scale;
  if (first && defaults.guidance_mode) $("guidance-mode").value = defaults.guidance_mode;
  connectEvents();
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  storeToken(token);
  $("token").value = "";
  $("token-error").textContent = "";
  start();
});

function showDaemonInfo() {
  $("daemon-info").classList.remove("error");
  $("daemon-info").textContent = `Model ${state.session.model} · visage ${state.session.version}`;
}

function showAllowedDirs(dirs) {
  const note = $("allowed-dirs");
  note.replaceChildren();
  if (!dirs.length) {
    note.textContent = "The daemon reads videos from any folder.";
    return;
  }
  note.append("Folders the daemon may read: ");
  dirs.forEach((dir, i) => {
    const chip = document.createElement("button");
    chip.type = "button";
    chip.className = "chip";
    chip.textContent = dir;
    chip.title = "Start the path with this folder";
    chip.addEventListener("click", () => {
      const field = $("media-path");
      field.value = dir.endsWith("/") ? dir : `${dir}/`;
      field.focus();
    });
    note.append(chip);
    if (i < dirs.length - 1) note.append(" ");
  });
}

// ---------------------------------------------------------------- live updates

const queue = queueView($("queue"), $("groups"), $("queue-empty"), {
  cancel: cancelJob,
  open: (id) => {
    const job = queue.job(id);
    if (job) {
      result.show(job);
      $("result").scrollIntoView({ behavior: "smooth", block: "nearest" });
    }
  },
});

const result = resultView({ renderSoundmap });

function applyJob(job) {
  queue.showJob(job);
  if (state.selectJob === job.id) {
    state.selectJob = null;
    result.show(job);
  } else result.update(job);
}

function onEvent(kind, data) {
  if (state.syncing) state.syncing.push([kind, data]);
  else if (kind === "job") applyJob(data);
  else queue.showGroup(data);
}

async function resync() {
  // Events are not replayed on connect: fetch the lists, then apply what arrived meanwhile if newer.
  state.syncing = [];
  try {
    const [jobs, groups] = await Promise.all([getJson("/api/jobs"), getJson("/api/groups")]);
    const pending = state.syncing;
    state.syncing = null;
    queue.replaceAll(jobs.jobs || [], groups.groups || []);
    for (const job of jobs.jobs || []) result.update(job);
    if (state.selectJob && queue.job(state.selectJob)) applyJob(queue.job(state.selectJob));
    for (const [kind, data] of pending) {
      const known = kind === "job" ? queue.job(data.id) : null;
      if (known && known.updated_at > data.updated_at) continue;
      onEvent(kind, data);
    }
  } catch (error) {
    state.syncing = null;
    if (!handleUnauthorised(error)) $("queue-empty").textContent = `The queue could not be loaded: ${error.message}`;
  }
}

function setLive(text, live) {
  $("live-status").textContent = text;
  $("live-status").classList.toggle("on", live);
}

function connectEvents() {
  if (state.events) state.events.close();
  const events = new EventSource("/api/events");
  state.events = events;
  events.addEventListener("open", () => {
    setLive("live", true);
    showDaemonInfo();
    resync();
  });
  events.addEventListener("job", (event) => onEvent("job", JSON.parse(event.data)));
  events.addEventListener("group", (event) => onEvent("group", JSON.parse(event.data)));
  events.addEventListener("error", () => {
    setLive("reconnecting…", false);
    // said where the user looks first, not only in the queue's badge: jobs sent now would fail
    $("daemon-info").textContent = "The daemon is not answering; the page reconnects when it is back.";
    $("daemon-info").classList.add("error");
    if (events.readyState === EventSource.CLOSED && state.events === events) {
      // The daemon refused the stream (restart, expired session): a new session, then a new stream.
      state.events = null;
      setTimeout(start, RECONNECT_MS);
    }
  });
}

// ---------------------------------------------------------------- 1. video

function setFieldError(inputId, message) {
  const input = $(inputId);
  if (!input) return;
  input.setAttribute("aria-invalid", message ? "true" : "false");
}

function clearFieldErrors() {
  for (const input of document.querySelectorAll("#job-form [aria-invalid]")) input.removeAttribute("aria-invalid");
  $("form-error").textContent = "";
}

function showPreview(url) {
  const preview = $("media-preview");
  if (url) preview.src = url;
  else if (preview.getAttribute("src")) {
    preview.removeAttribute("src");
    preview.load(); // drop the last picture
  }
  preview.controls = Boolean(url);
  $("preview-empty").hidden = Boolean(url);
}

async function openMedia() {
  const path = typedPath($("media-path").value);
  $("media-path").value = path; // the path as the daemon gets it
  if (path === state.mediaPath) return; // Enter and the change event both ask; open a video once
  state.mediaPath = path;
  const info = $("media-info");
  info.classList.remove("error");
  setFieldError("media-path", "");
  state.duration = null;
  if (!path) return;
  info.textContent = "Opening…";
  try {
    const probe = await getJson(`/api/probe?path=${encodeURIComponent(path)}`);
    if (state.mediaPath !== path) return; // another video was chosen meanwhile
    state.duration = Number(probe.duration_s) || null;
    info.textContent = `${basename(path)}: ${seconds(probe.duration_s)}, ${probe.width}×${probe.height}, ${Math.round(probe.fps * 100) / 100} fps`;
    showPreview(mediaUrl(path));
    const end = parseDecimal($("end-s").value);
    if (state.duration && (end === null || end > state.duration)) {
      $("end-s").value = String(Math.min(state.duration, 10));
    }
    $("range-info").textContent = `Scrub the preview, then set in and out (the video lasts ${seconds(state.duration)}).`;
  } catch (error) {
    if (handleUnauthorised(error)) return;
    info.textContent = `${error.message}`;
    info.classList.add("error");
    setFieldError("media-path", error.message);
    showPreview(null);
    state.mediaPath = null; // let the user try the same path again
  }
}

$("media-load").addEventListener("click", openMedia);
$("media-path").addEventListener("change", openMedia);
$("media-path").addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault(); // Enter opens the video; it does not submit the job
    openMedia();
  }
});

async function uploadFile(file) {
  const limit = state.session?.upload_limit_bytes;
  const status = $("upload-status");
  const text = $("upload-text");
  status.hidden = false;
  text.classList.remove("error");
  if (limit && file.size > limit) {
    text.textContent = `${file.name} is ${fileSize(file.size)}; this daemon takes uploads up to ${fileSize(limit)}. Put the file in one of its folders and type its path instead.`;
    text.classList.add("error");
    return;
  }
  $("upload-progress").value = 0;
  text.textContent = `Uploading ${file.name}…`;
  try {
    const uploaded = await upload(file, (fraction) => {
      $("upload-progress").value = fraction;
      text.textContent = `Uploading ${file.name}: ${Math.round(fraction * 100)} %`;
    });
    $("upload-progress").value = 1;
    text.textContent = `Uploaded ${file.name}.`;
    $("media-path").value = uploaded.path;
    await openMedia();
  } catch (error) {
    if (handleUnauthorised(error)) return;
    text.textContent = `Upload failed: ${error.message}`;
    text.classList.add("error");
  }
}

$("upload-input").addEventListener("change", () => {
  const file = $("upload-input").files[0];
  if (file) uploadFile(file);
  $("upload-input").value = "";
});

const dropZone = $("drop-zone");
for (const name of ["dragenter", "dragover"]) {
  dropZone.addEventListener(name, (event) => {
    event.preventDefault();
    dropZone.classList.add("dragging");
  });
}
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  const file = event.dataTransfer.files[0];
  if (file) uploadFile(file);
});
// A file dropped beside the zone must not replace the page.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

// ---------------------------------------------------------------- 2. range

function roundTime(t) {
  return Math.round(t * 100) / 100;
}

$("set-in").addEventListener("click", () => {
  $("start-s").value = String(roundTime($("media-preview").currentTime || 0));
});
$("set-out").addEventListener("click", () => {
  $("end-s").value = String(roundTime($("media-preview").currentTime || 0));
});
for (const id of ["start-s", "end-s"]) {
  // typing a time scrubs the preview to it
  $(id).addEventListener("change", () => {
    const t = parseDecimal($(id).value);
    if (t !== null && Number.isFinite(t) && $("media-preview").getAttribute("src")) $("media-preview").currentTime = t;
  });
}

// ---------------------------------------------------------------- 3. direction

function showDirection(yaw, pitch) {
  $("direction-words").textContent = `Camera looks ${directionWords(yaw, pitch).replace(/^front$/, "to the front")}`;
}

const dial = directionDial($("yaw-dial"), $("pitch-dial"), (yaw, pitch) => {
  $("yaw-deg").value = String(yaw);
  $("pitch-deg").value = String(pitch);
  showDirection(yaw, pitch);
});

for (const id of ["yaw-deg", "pitch-deg"]) {
  $(id).addEventListener("input", () => {
    const yaw = parseDecimal($("yaw-deg").value) || 0;
    const pitch = parseDecimal($("pitch-deg").value) || 0;
    dial.set(yaw, pitch);
    showDirection(yaw, pitch);
  });
}
showDirection(0, 0);

function setCurve(path, name) {
  state.curvePath = path;
  $("curve-clear").hidden = !path;
  dial.setEnabled(!path);
  $("yaw-deg").disabled = Boolean(path);
  $("pitch-deg").disabled = Boolean(path);
  $("curve-info").classList.remove("error");
  $("curve-info").textContent = path ? `Using the curve ${name}: the camera follows it; the fixed direction above is ignored.` : "";
}

$("curve-file").addEventListener("change", async () => {
  const file = $("curve-file").files[0];
  if (!file) return setCurve(null);
  try {
    const saved = await postText("/api/curves", await file.text());
    setCurve(saved.path, file.name);
  } catch (error) {
    if (handleUnauthorised(error)) return;
    setCurve(null);
    $("curve-file").value = "";
    $("curve-info").textContent = `${file.name}: ${error.message}`;
    $("curve-info").classList.add("error");
  }
});
$("curve-clear").addEventListener("click", () => {
  $("curve-file").value = "";
  setCurve(null);
});

// ---------------------------------------------------------------- submit

// Number fields by what the user calls them (text fields: see parseDecimal).
const NUMBER_FIELDS = {
  "start-s": "The start",
  "end-s": "The end",
  "yaw-deg": "The yaw",
  "pitch-deg": "The pitch",
  seed: "The seed",
  "guidance-scale": "The guidance scale",
};

/** The request body, or a [field, message] pair naming what is wrong. */
function jobRequest() {
  for (const [id, name] of Object.entries(NUMBER_FIELDS)) {
    // "1e", "--1" or "1,234.5" is refused rather than read as something the user did not mean
    if (Number.isNaN(parseDecimal($(id).value))) return [[id, `${name} is not a number: type digits, with a dot or a comma for decimals.`]];
  }
  const media = typedPath($("media-path").value);
  if (!media) return [["media-path", "Choose a video first: type its path or drop a file."]];
  const start = parseDecimal($("start-s").value) ?? 0;
  const end = parseDecimal($("end-s").value);
  if (!Number.isFinite(start) || start < 0) return [["start-s", "The start must be a number of seconds, 0 or more."]];
  if (end !== null && !Number.isFinite(end)) return [["end-s", "The end must be a number of seconds, or empty for the whole video."]];
  if (end !== null && end <= start) return [["end-s", `The end (${end} s) must come after the start (${start} s).`]];
  if (state.duration && start >= state.duration) return [["start-s", `The start must be before the end of the video (${seconds(state.duration)}).`]];
  if (state.duration && end !== null && end > state.duration + 0.05) return [["end-s", `The end (${end} s) is after the end of the video (${seconds(state.duration)}); leave it empty for the whole video.`]];
  const yaw = parseDecimal($("yaw-deg").value) ?? 0;
  const pitch = parseDecimal($("pitch-deg").value) ?? 0;
  if (!Number.isFinite(yaw) || Math.abs(yaw) > 360) return [["yaw-deg", "Yaw must be between -360° and 360°."]];
  if (!Number.isFinite(pitch) || Math.abs(pitch) > 90) return [["pitch-deg", "Pitch must be between -90° and 90°."]];
  const seed = parseDecimal($("seed").value);
  if (seed !== null && !(Number.isInteger(seed) && seed >= 0)) return [["seed", "The seed must be a whole number, 0 or more, or empty for a random one."]];
  const defaults = state.session?.defaults || {};
  const scale = parseDecimal($("guidance-scale").value);
  if (scale !== null && !Number.isFinite(scale)) return [["guidance-scale", "The guidance scale must be a number."]];
  const mode = $("guidance-mode").value;
  return [
    null,
    {
      media,
      start_s: start,
      end_s: end,
      yaw_deg: wrapYaw(yaw),
      pitch_deg: clampPitch(pitch),
      curve: state.curvePath,
      seed,
      guidance_scale: scale === defaults.guidance_scale ? null : scale,
      guidance_mode: mode === defaults.guidance_mode ? null : mode,
      output: typedPath($("output").value) || null,
      preview: $("preview").checked,
    },
  ];
}

function showFormError(inputId, message) {
  $("form-error").textContent = message;
  if (inputId) {
    setFieldError(inputId, message);
    if ($(inputId).closest("details")) $("advanced").open = true;
    $(inputId).focus();
  }
}

$("job-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  clearFieldErrors();
  $("submit-info").textContent = ""; // not "Queued." of the last job next to this one's problem
  const [problem, body] = jobRequest();
  if (problem) return showFormError(...problem);
  const button = $("submit");
  button.disabled = true;
  $("submit-info").textContent = "Sending…";
  try {
    const accepted = await postJson("/api/jobs", body);
    state.selectJob = accepted.job_id;
    const known = queue.job(accepted.job_id);
    if (known) applyJob(known);
    $("submit-info").textContent = "Queued. Its progress shows in the queue and the result panel.";
  } catch (error) {
    $("submit-info").textContent = "";
    if (handleUnauthorised(error)) return;
    showFormError(FIELD_INPUTS[error.field] || null, `${error.message} (${error.code})`);
  } finally {
    button.disabled = false;
  }
});

// ---------------------------------------------------------------- queue and result actions

async function cancelJob(id) {
  try {
    await postJson(`/api/jobs/${encodeURIComponent(id)}/cancel`);
  } catch (error) {
    if (!handleUnauthorised(error)) alertInQueue(id, `Cancel failed: ${error.message} (${error.code})`);
  }
}

function alertInQueue(id, message) {
  const row = document.querySelector(`[data-job-id="${CSS.escape(id)}"] .job-error`);
  if (row) {
    row.hidden = false;
    row.textContent = message;
  }
}

async function renderSoundmap(id) {
  try {
    await postJson(`/api/jobs/${encodeURIComponent(id)}/soundmap`);
  } catch (error) {
    if (!handleUnauthorised(error)) result.soundmapError(`The sound map was refused: ${error.message} (${error.code})`);
  }
}

start();
