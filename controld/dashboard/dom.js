// Small DOM helpers. Text always goes in as text nodes: names and messages come from users and
// from the API, and must never be parsed as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name in el && typeof el[name] !== "function" && !name.startsWith("aria") && name !== "role") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

export function time(rfc3339) {
  if (!rfc3339) return h("span", {}, "—");
  return h("time", { dateTime: rfc3339 }, new Date(rfc3339).toLocaleString());
}

// A `role="alert"` paragraph that is read out when its text changes; empty means hidden.
export function alertBox() {
  const box = h("p", { class: "alert", role: "alert", hidden: true });
  box.show = (message) => {
    box.textContent = message || "";
    box.hidden = !message;
  };
  return box;
}

// Runs an async action from a button: disables the button while it runs, clears `alert` first and
// hands failures to `onError` (default: show the message in `alert`).
export async function run(button, alert, action, onError = (err) => alert.show(err.message)) {
  button.disabled = true;
  alert.show("");
  try {
    await action();
  } catch (err) {
    onError(err);
  } finally {
    button.disabled = false;
  }
}

const POLL_MS = 2000;

// Calls `refresh` now and again 2 s after each call has finished, until the returned function is
// called. This is how views stay live without reloading.
export function poll(refresh) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    await refresh(() => stopped);
    if (!stopped) timer = setTimeout(tick, POLL_MS);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// Asks for confirmation in the page's modal <dialog> (keyboard: Tab between buttons, Esc cancels).
export function confirmAction(message, confirmLabel) {
  const dialog = document.getElementById("confirm");
  dialog.querySelector("#confirm-message").textContent = message;
  dialog.querySelector("#confirm-yes").textContent = confirmLabel;
  dialog.returnValue = "";
  dialog.showModal();
  dialog.querySelector("#confirm-no").focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
  });
}

// A read-only field with a Copy button; `secret` fields are masked until "Show" is pressed.
export function copyField(label, value, { secret = false } = {}) {
  const id = `field-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  const input = h("input", { id, type: secret ? "password" : "text", value, readOnly: true, spellcheck: false, autocomplete: "off" });
  const note = h("span", { class: "copy-note", role: "status" });
  const reveal = secret ? h("button", { type: "button", "aria-pressed": "false", "aria-controls": id }, "Show") : null;
  const setRevealed = (revealed) => {
    input.type = revealed ? "text" : "password";
    reveal.textContent = revealed ? "Hide" : "Show";
    reveal.setAttribute("aria-pressed", String(revealed));
  };
  if (reveal) reveal.addEventListener("click", () => setRevealed(input.type === "password"));
  const copy = h("button", { type: "button" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(input.value);
      note.textContent = "Copied";
    } catch {
      // The clipboard API needs a secure context (https or localhost); elsewhere the user copies
      // the selected text, which a masked field would not allow.
      if (reveal) setRevealed(true);
      input.select();
      note.textContent = "Selected: press Ctrl+C (⌘C) to copy";
    }
  });
  return h("div", { class: "field copy-field" }, h("label", { htmlFor: id }, label), h("div", { class: "row" }, input, reveal, copy), note);
}
