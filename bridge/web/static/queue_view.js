// The queue: one row per job of the daemon (OSC, fill or this page), newest first, and one row per fill run.
// Jobs of a fill run are summed up in their group's row instead of listed one by one.

import { ACTIVE_STATES, STATE_WORDS, basename, seconds, timeLeft } from "./format.js";

const MAX_ROWS = 200; // older finished jobs stay in the daemon; the page keeps the list short

export function queueView(list, groupList, emptyNote, actions) {
  const jobs = new Map();
  const groups = new Map();
  const jobTemplate = document.getElementById("job-template");
  const groupTemplate = document.getElementById("group-template");

  function jobRow(job) {
    let row = list.querySelector(`[data-job-id="${CSS.escape(job.id)}"]`);
    if (!row) {
      row = jobTemplate.content.firstElementChild.cloneNode(true);
      row.dataset.jobId = job.id;
      row.querySelector(".job-cancel").addEventListener("click", () => actions.cancel(job.id));
      row.querySelector(".job-open").addEventListener("click", () => actions.open(job.id));
    }
    return row;
  }

  function fillJobRow(row, job) {
    row.dataset.state = job.state;
    const range = job.end_s === null || job.end_s === undefined ? `${seconds(job.start_s)} – end` : `${seconds(job.start_s)} – ${seconds(job.end_s)}`;
    row.querySelector(".job-title").textContent = basename(job.media);
    row.querySelector(".job-title").title = job.media;
    const state = row.querySelector(".job-state");
    const running = job.state === "running" && job.stage && job.stage !== "running" ? ` · ${job.stage}` : "";
    state.textContent = (STATE_WORDS[job.state] || job.state) + running;
    state.dataset.state = job.state;
    row.querySelector(".job-cache").hidden = !job.cache_hit;
    const from = job.source ? ` · from ${job.source}` : "";
    const direction = job.curve ? "direction curve" : `yaw ${Math.round(job.yaw_deg)}°, pitch ${Math.round(job.pitch_deg)}°`;
    row.querySelector(".job-meta").textContent = `${range} · ${direction}${from}`;
    const bar = row.querySelector(".job-progress");
    bar.value = job.state === "done" ? 1 : Math.max(0, Math.min(1, job.progress || 0));
    bar.setAttribute("aria-label", `Progress of ${basename(job.media)}`);
    bar.hidden = !ACTIVE_STATES.has(job.state);
    const error = row.querySelector(".job-error");
    const showError = job.error && job.state !== "cancelled";
    error.hidden = !showError;
    error.textContent = showError ? `${job.error.code}: ${job.error.message}` : "";
    const cancel = row.querySelector(".job-cancel");
    cancel.hidden = !ACTIVE_STATES.has(job.state);
    cancel.setAttribute("aria-label", `Cancel ${basename(job.media)}, ${range}`);
    const open = row.querySelector(".job-open");
    open.hidden = job.state !== "done";
    open.setAttribute("aria-label", `Show the result of ${basename(job.media)}, ${range}`);
  }

  function place(row, job) {
    // newest first: before the first row whose job was created earlier
    const created = job.created_at || 0;
    const after = [...list.children].find((other) => other !== row && (jobs.get(other.dataset.jobId)?.created_at || 0) < created);
    if (row.parentNode !== list || row.nextElementSibling !== after) list.insertBefore(row, after || null);
    while (list.children.length > MAX_ROWS) list.lastElementChild.remove();
  }

  function showJob(job) {
    jobs.set(job.id, job);
    if (job.group) return; // summed up in its group's row
    const row = jobRow(job);
    fillJobRow(row, job);
    place(row, job);
    emptyNote.hidden = list.children.length > 0 || groupList.children.length > 0;
  }

  function showGroup(group, atEnd = false) {
    groups.set(group.id, group);
    let row = groupList.querySelector(`[data-group-id="${CSS.escape(group.id)}"]`);
    if (!row) {
      row = groupTemplate.content.firstElementChild.cloneNode(true);
      row.dataset.groupId = group.id;
      if (atEnd) groupList.append(row);
      else groupList.prepend(row); // a new fill run
    }
    row.dataset.state = group.state;
    row.querySelector(".group-title").textContent = group.label || group.id;
    const state = row.querySelector(".group-state");
    state.textContent = STATE_WORDS[group.state] || group.state;
    state.dataset.state = group.state;
    const finished = group.done + group.failed;
    const bar = row.querySelector(".group-progress");
    if (group.total) bar.value = finished / group.total;
    else bar.removeAttribute("value"); // the run's size is not known yet: an indeterminate bar
    bar.setAttribute("aria-label", `Shots finished in ${group.label || group.id}`);
    const parts = [group.total ? `${group.done} of ${group.total} shots done` : `${group.done} shots done`];
    if (group.failed) parts.push(`${group.failed} failed`);
    if (group.running) parts.push(`${group.running} running`);
    if (group.state === "running") {
      const left = timeLeft(group.eta_s);
      if (left) parts.push(left);
    }
    row.querySelector(".group-meta").textContent = parts.join(" · ");
    emptyNote.hidden = true;
  }

  return {
    replaceAll(jobList, groupViews) {
      list.replaceChildren();
      groupList.replaceChildren();
      jobs.clear();
      groups.clear();
      for (const group of groupViews) showGroup(group, true);
      for (const job of jobList) showJob(job);
      emptyNote.hidden = list.children.length > 0 || groupList.children.length > 0;
    },
    showJob,
    showGroup,
    job: (id) => jobs.get(id),
  };
}
