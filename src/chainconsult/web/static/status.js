// The status page's behaviour, kept out of the HTML so a strict CSP (script-src 'self') holds:
// the login form, the periodic refresh of the panels, and the acknowledge buttons.
"use strict";

function cookie(name) {
  const prefix = name + "=";
  for (const part of document.cookie.split("; ")) {
    if (part.startsWith(prefix)) return decodeURIComponent(part.slice(prefix.length));
  }
  return "";
}

function setupLogin() {
  const form = document.getElementById("login-form");
  if (!form) return;
  const message = document.getElementById("login-message");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.hidden = true;
    const response = await fetch(form.dataset.loginUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        email: form.elements.email.value,
        password: form.elements.password.value,
      }),
    });
    if (response.ok) {
      window.location.reload();
      return;
    }
    let detail = "Login failed.";
    try { detail = (await response.json()).detail || detail; } catch (_) { /* not JSON */ }
    message.textContent = detail;
    message.hidden = false;
  });
}

async function refreshPanels(panels) {
  const response = await fetch(panels.dataset.refreshUrl, { credentials: "same-origin" });
  if (response.status === 401 || response.status === 403) {
    window.location.reload();
    return;
  }
  if (response.ok) panels.innerHTML = await response.text();
}

async function acknowledge(button, panels) {
  button.disabled = true;
  const response = await fetch(button.dataset.ackUrl, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": cookie("csrf_token") },
  });
  if (!response.ok) {
    button.disabled = false;
    button.textContent = "Retry acknowledge";
    return;
  }
  await refreshPanels(panels);
}

function setupDashboard() {
  const panels = document.getElementById("panels");
  if (!panels) return;
  panels.addEventListener("click", (event) => {
    const button = event.target.closest("button.ack");
    if (button) acknowledge(button, panels);
  });
  const every = Number(panels.dataset.refreshMs) || 5000;
  window.setInterval(() => { refreshPanels(panels).catch(() => {}); }, every);
}

document.addEventListener("DOMContentLoaded", () => {
  setupLogin();
  setupDashboard();
});
