// Messages pages: follow the event stream (GET /api/v2/events) for new messages in the open
// thread and unread counts in the list; refuse a file over the upload limit before sending
// it. The pages work without it (reload to see more; the server refuses a large file).
"use strict";

(() => {
  const upload = document.getElementById("upload-form");
  const picker = upload?.querySelector("input[type=file]");
  if (picker) {
    const limit = Number(upload.dataset.maxBytes);
    picker.addEventListener("change", () => {
      const file = picker.files[0];
      // The browser then keeps the form from being sent, and says this beside the field.
      picker.setCustomValidity(
        file && file.size > limit ? `This file is larger than the limit, ${limit} bytes.` : "",
      );
    });
  }
})();

(() => {
  if (!("EventSource" in window)) return;
  const thread = document.getElementById("messages");
  const stream = new EventSource("/api/v2/events");

  stream.addEventListener("message", (event) => {
    const message = JSON.parse(event.data);
    if (thread && thread.dataset.conversation === message.conversation_id) {
      if (document.getElementById("m-" + message.id)) return;
      const item = document.createElement("li");
      item.className = "card message";
      item.id = "m-" + message.id;
      const body = document.createElement("p");
      body.className = "body";
      // textContent: a message is text, never markup.
      body.textContent = message.deleted ? "message deleted" : message.body;
      if (message.file && !message.deleted) {
        const link = document.createElement("a");
        link.href = "/api/v2/files/" + message.file.id;
        link.download = "";
        link.textContent = message.file.name;
        body.className = "file";
        body.replaceChildren("File: ", link);
      }
      item.append(body);
      document.getElementById("no-messages")?.remove();
      thread.append(item);
      return;
    }
    const count = document.querySelector(`[data-unread="${message.conversation_id}"]`);
    if (count && !message.deleted && !message.edited_at) {
      const now = (parseInt(count.textContent.replace(/\D/g, ""), 10) || 0) + 1;
      count.textContent = String(now);
      count.hidden = false;
    }
  });
})();
