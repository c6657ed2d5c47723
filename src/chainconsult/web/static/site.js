// chainconsult pages: small enhancements only; every form works without this file.
"use strict";

document.documentElement.dataset.script = "on";

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  // A form that changes something for good asks first.
  const question = form.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
    return;
  }
  // One click, one request: a second click while the first is on its way does nothing.
  if (form.method.toLowerCase() === "post") {
    window.setTimeout(() => {
      for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = true;
    }, 0);
  }
});

// After a refused form, take the reader to what went wrong.
const summary = document.getElementById("error-summary");
if (summary) summary.focus();
