// The live parts of the wizard's pages: dialogs, the upload, progress polling.
// Plain script on server-rendered pages; every page works as a form without it
// except the upload's progress bar and the live progress of a running job.
"use strict";

function openDialogs() {
  for (const button of document.querySelectorAll("[data-dialog]")) {
    button.addEventListener("click", () => {
      const dialog = document.getElementById(button.dataset.dialog);
      dialog.showModal();
      dialog.addEventListener("close", () => button.focus(), { once: true });
    });
  }
}

function upperSecondaryOption() {
  const unit = document.getElementById("unit_id");
  const field = document.getElementById("upper-field");
  if (!unit || !field) return;
  const show = () => {
    const level = unit.selectedOptions[0] && unit.selectedOptions[0].dataset.level;
    const offered = level === "unspecified";
    field.hidden = !offered;
    if (!offered) document.getElementById("treat_as_upper_secondary").checked = false;
  };
  unit.addEventListener("change", show);
  show();
}

function upload() {
  const form = document.getElementById("upload");
  if (!form) return;
  const input = document.getElementById("file");
  const drop = document.getElementById("drop");
  const bar = document.getElementById("upload-progress");
  const problem = document.getElementById("upload-error");
  const say = (text) => { problem.textContent = text; };

  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) input.files = event.dataTransfer.files;
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    say("");
    const file = input.files[0];
    if (!file) { say(form.dataset.choose); input.focus(); return; }
    const accepted = form.dataset.accept.split(",");
    if (!accepted.some((suffix) => file.name.toLowerCase().endsWith(suffix))) {
      say(form.dataset.wrongType); input.focus(); return;
    }
    if (file.size > Number(form.dataset.limit)) { say(form.dataset.tooLarge); input.focus(); return; }
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("Content-Type", "application/octet-stream");
    request.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    request.setRequestHeader("X-File-Name", encodeURIComponent(file.name));
    request.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) bar.value = Math.round((100 * progress.loaded) / progress.total);
    });
    request.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(request.responseText); } catch (_) { /* not JSON: say it failed */ }
      if (request.status === 202 && body.url) { bar.value = 100; window.location.assign(body.url); return; }
      say((body.error && body.error.message) || form.dataset.failed);
    });
    request.addEventListener("error", () => say(form.dataset.failed));
    for (const button of form.querySelectorAll("button")) button.disabled = true;
    request.addEventListener("loadend", () => {
      for (const button of form.querySelectorAll("button")) button.disabled = false;
    });
    request.send(file);
  });
}

function followJob() {
  const job = document.getElementById("job");
  if (!job || job.dataset.poll !== "1") return;
  const bar = document.getElementById("job-progress");
  const text = document.getElementById("progress-text");
  const initial = job.dataset.state;
  const tick = async () => {
    try {
      const response = await fetch(job.dataset.status, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const status = await response.json();
        if (status.state !== initial || status.archive_held && !status.archive_decision) {
          window.location.reload();
          return;
        }
        if (bar && status.total) {
          bar.max = status.total;
          bar.value = status.done;
          text.textContent = text.dataset.template
            .replace("{done}", status.done)
            .replace("{total}", status.total);
        }
      }
    } catch (_) { /* the next tick tries again */ }
    window.setTimeout(tick, 700);
  };
  window.setTimeout(tick, 500);
}

function ticketSignIn() {
  const form = document.getElementById("ticket-form");
  if (!form) return;
  const ticket = window.location.hash.slice(1);
  if (!ticket) return;
  const [value, next] = ticket.split("&next=");
  document.getElementById("ticket").value = value;
  document.getElementById("next").value = next ? decodeURIComponent(next) : "";
  history.replaceState(null, "", window.location.pathname);
  form.submit();
}

document.addEventListener("DOMContentLoaded", () => {
  openDialogs();
  upperSecondaryOption();
  upload();
  followJob();
  ticketSignIn();
});
