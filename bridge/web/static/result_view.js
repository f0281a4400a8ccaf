// The result panel: one job at a time, with its headphone preview, its picture, the sound map video,
// the downloads and the output path.

import { ACTIVE_STATES, STATE_WORDS, basename, directionWords, seconds } from "./format.js";
import { downloadUrl, mediaUrl } from "./api.js";

const $ = (id) => document.getElementById(id);

export function resultView(actions) {
  const audio = $("preview-audio");
  const picture = $("result-video");
  const soundmap = $("soundmap-video");
  let shown = null; // the job on display
  let startS = 0;

  // The muted picture follows the headphone preview, so the sound can be judged against what is seen.
  function follow() {
    const target = startS + audio.currentTime;
    if (Math.abs(picture.currentTime - target) > 0.25) picture.currentTime = target;
    if (soundmap.src && Math.abs(soundmap.currentTime - audio.currentTime) > 0.25) soundmap.currentTime = audio.currentTime;
  }
  audio.addEventListener("play", () => {
    follow();
    picture.play().catch(() => {});
    if (soundmap.src) soundmap.play().catch(() => {});
  });
  audio.addEventListener("pause", () => {
    picture.pause();
    soundmap.pause();
  });
  audio.addEventListener("seeked", follow);
  audio.addEventListener("timeupdate", follow);

  $("render-soundmap").addEventListener("click", () => shown && actions.renderSoundmap(shown.id));
  $("copy-path").addEventListener("click", copyPath);

  async function copyPath() {
    const field = $("output-path");
    const info = $("copy-info");
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
      await navigator.clipboard.writeText(field.value);
      info.textContent = "Path copied.";
    } catch {
      field.focus();
      field.select();
      info.textContent = "Path selected: press Ctrl+C (⌘C on a Mac) to copy it.";
    }
  }

  function setSource(element, url) {
    if (!url) {
      if (element.getAttribute("src")) {
        element.removeAttribute("src");
        element.load();
      }
      return;
    }
    if (element.getAttribute("src") !== url) element.src = url;
  }

  function render(job) {
    $("result-empty").hidden = true;
    $("result-body").hidden = false;
    const state = STATE_WORDS[job.state] || job.state;
    const range = job.end_s === null || job.end_s === undefined ? `from ${seconds(job.start_s)}` : `${seconds(job.start_s)} – ${seconds(job.end_s)}`;
    const progress = ACTIVE_STATES.has(job.state) ? ` ${Math.round((job.progress || 0) * 100)}\u00a0%` : "";
    const camera = job.curve
      ? "camera following a direction curve" // its fixed yaw and pitch were not used
      : `camera ${directionWords(job.yaw_deg, job.pitch_deg)} (yaw ${Math.round(job.yaw_deg)}°, pitch ${Math.round(job.pitch_deg)}°)`;
    $("result-summary").textContent = `${basename(job.media)}, ${range}, ${camera} — ${state}${progress}${job.cache_hit ? " (from the cache)" : ""}`;
    const failed = job.state === "error" && job.error; // why, where the user waited for the result
    $("result-error").hidden = !failed;
    $("result-error").textContent = failed ? `${job.error.code}: ${job.error.message}` : "";
    const done = job.state === "done";
    const there = done && Boolean(job.files.wav); // a finished result may since have been moved or deleted
    for (const id of ["copy-path", "output-path"]) $(id).toggleAttribute("hidden", !done);
    $("download-wav").toggleAttribute("hidden", !there);
    $("download-sidecar").toggleAttribute("hidden", !(there && job.files.sidecar));
    $("result-missing").hidden = !done || there;
    $("result-audio").hidden = !done;
    $("preview-missing").hidden = Boolean(job.files.preview);
    audio.hidden = !job.files.preview;
    $("result-audio").querySelector(".headphones").hidden = !job.files.preview;
    $("result-picture-caption").textContent = job.files.preview ? "Picture (follows the audio player)" : "Picture";
    picture.controls = soundmap.controls = done && !job.files.preview; // no preview: the videos play alone
    setSource(audio, done ? job.files.preview : null);
    startS = Number(job.start_s) || 0;
    setSource(picture, job.media ? `${mediaUrl(job.media)}#t=${startS}` : null);
    if (done) $("output-path").value = job.output;
    if (there) {
      $("download-wav").href = downloadUrl(job.files.wav);
      $("download-wav").setAttribute("download", basename(job.output));
    }
    if (there && job.files.sidecar) {
      $("download-sidecar").href = downloadUrl(job.files.sidecar);
      $("download-sidecar").setAttribute("download", `${basename(job.output)}.json`);
    }
    const mapState = job.soundmap_state;
    const mapReady = mapState === "ready" && job.files.soundmap;
    $("soundmap-figure").hidden = !mapReady;
    $("soundmap-placeholder").hidden = !there || mapReady;
    setSource(soundmap, mapReady ? job.files.soundmap : null);
    const button = $("render-soundmap");
    button.disabled = mapState === "rendering";
    $("soundmap-info").textContent =
      mapState === "rendering" ? "Rendering the sound map…" : mapState === "error" ? "The sound map could not be rendered." : "";
  }

  return {
    show(job) {
      if (!shown || shown.id !== job.id) $("copy-info").textContent = "";
      shown = job;
      render(job);
    },
    update(job) {
      if (shown && shown.id === job.id) {
        shown = job;
        render(job);
      }
    },
    soundmapError(message) {
      $("soundmap-info").textContent = message;
    },
  };
}
