// Entry point: sign-in, the hash router (#/ list, #/new create, #/inputs/<uid> input page) and the
// two small views, list and create. Views return a function that stops their polling.

import { ApiError, api, clearSession, loadSession, saveSession } from "./api.js";
import { alertBox, h, poll, run, time } from "./dom.js";
import { inputPage } from "./input-page.js";
import { statusBadge, statusKey } from "./status.js";

const main = document.getElementById("main");
const signOut = document.getElementById("sign-out");
let stopView = () => {};

function show(title, ...content) {
  const heading = h("h1", { tabIndex: -1 }, title);
  main.replaceChildren(heading, ...content);
  document.title = `${title} · cfstream`;
  heading.focus();
  return heading;
}

// Any 401/403 while signed in means the token no longer works: back to the sign-in form.
function onApiError(err, alert) {
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
    clearSession();
    route(err.message);
  } else {
    alert.show(err.message);
  }
}

function signInView(message) {
  const alert = alertBox();
  const accountId = h("input", { id: "account-id", name: "account-id", required: true, autocomplete: "username", spellcheck: false });
  const token = h("input", { id: "api-token", name: "api-token", type: "password", required: true, autocomplete: "current-password" });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "card" },
    h("p", {}, "Use the account id and API token that controld printed when it first started."),
    h("div", { class: "field" }, h("label", { htmlFor: "account-id" }, "Account id"), accountId),
    h("div", { class: "field" }, h("label", { htmlFor: "api-token" }, "API token"), token),
    alert,
    submit,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const session = { accountId: accountId.value.trim(), token: token.value.trim() };
    run(submit, alert, async () => {
      await api(session).listInputs();
      saveSession(session);
      route();
    });
  });
  show("Sign in", form);
  accountId.focus();
  alert.show(message);
  return () => {};
}

function listView(session) {
  const alert = alertBox();
  const rows = h("tbody");
  const empty = h("p", { hidden: true }, "No live inputs yet.");
  const table = h(
    "table",
    { class: "inputs" },
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Created"))),
    rows,
  );
  show("Live Inputs", h("p", {}, h("a", { href: "#/new", class: "button" }, "Create Live Input")), alert, table, empty);

  // Rows are rebuilt only when something changed, so keyboard focus on a link survives polling.
  const client = api(session);
  let shown = "";
  return poll(async (stopped) => {
    try {
      const { liveInputs } = await client.listInputs();
      // The list endpoint carries no status (as on Cloudflare); each input's own object does.
      const inputs = await Promise.all(liveInputs.map((i) => client.getInput(i.uid)));
      const signature = JSON.stringify(inputs.map((i) => [i.uid, i.meta, i.created, statusKey(i)]));
      if (!stopped() && signature !== shown) {
        shown = signature;
        rows.replaceChildren(...inputs.map(inputRow));
        empty.hidden = inputs.length > 0;
      }
      alert.show("");
    } catch (err) {
      if (!stopped()) onApiError(err, alert);
    }
  });
}

function inputRow(input) {
  const name = (input.meta && input.meta.name) || input.uid;
  return h(
    "tr",
    { "data-uid": input.uid },
    h("td", { "data-label": "Name" }, h("a", { href: `#/inputs/${input.uid}` }, name), input.enabled ? null : h("span", { class: "tag" }, "disabled")),
    h("td", { "data-label": "Status" }, statusBadge(input.status)),
    h("td", { "data-label": "Created" }, time(input.created)),
  );
}

function createView(session) {
  const alert = alertBox();
  const field = (id, label, control, hint) =>
    h("div", { class: "field" }, h("label", { htmlFor: id }, label), control, hint ? h("small", { id: `${id}-hint` }, hint) : null);
  const name = h("input", { id: "name", required: true, autocomplete: "off" });
  const mode = h("select", { id: "recording-mode", "aria-describedby": "recording-mode-hint" }, h("option", { value: "automatic" }, "automatic"), h("option", { value: "off" }, "off"));
  const timeout = h("input", { id: "timeout-seconds", type: "number", min: "0", step: "1", value: "0", "aria-describedby": "timeout-seconds-hint" });
  const signed = h("input", { id: "require-signed-urls", type: "checkbox" });
  const origins = h("input", { id: "allowed-origins", autocomplete: "off", spellcheck: false, "aria-describedby": "allowed-origins-hint" });
  const submit = h("button", { type: "submit" }, "Create");
  const form = h(
    "form",
    { class: "card" },
    field("name", "Name", name),
    field("recording-mode", "Recording mode", mode, "automatic: live playback and a recording of each broadcast; off: neither, the input only relays to its outputs."),
    field("timeout-seconds", "Reconnect timeout (timeoutSeconds)", timeout, "Seconds an encoder may be away and continue the same recording; 0 = platform default."),
    h("div", { class: "field checkbox" }, signed, h("label", { htmlFor: "require-signed-urls" }, "Require signed URLs")),
    field("allowed-origins", "Allowed origins", origins, "Comma-separated, e.g. example.com, *.example.net; empty = any."),
    alert,
    h("div", { class: "row" }, submit, h("a", { href: "#/", class: "button secondary" }, "Cancel")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const allowedOrigins = origins.value.split(/[\s,]+/).filter(Boolean);
    const body = {
      meta: { name: name.value.trim() },
      recording: {
        mode: mode.value,
        timeoutSeconds: Number(timeout.value || 0),
        requireSignedURLs: signed.checked,
        allowedOrigins: allowedOrigins.length ? allowedOrigins : null,
      },
    };
    run(
      submit,
      alert,
      async () => {
        const input = await api(session).createInput(body);
        location.hash = `#/inputs/${input.uid}`;
      },
      (err) => onApiError(err, alert),
    );
  });
  show("Create Live Input", form);
  name.focus();
  return () => {};
}

function route(message) {
  stopView();
  const session = loadSession();
  signOut.hidden = !session;
  if (!session) {
    stopView = signInView(message);
    return;
  }
  const hash = location.hash || "#/";
  const inputMatch = hash.match(/^#\/inputs\/([0-9A-Za-z]+)$/);
  if (hash === "#/new") stopView = createView(session);
  else if (inputMatch) stopView = inputPage(session, inputMatch[1], { show, onApiError });
  else stopView = listView(session);
}

signOut.addEventListener("click", () => {
  clearSession();
  history.replaceState(null, "", "#/"); // unlike assigning location.hash, fires no second route()
  route();
});
window.addEventListener("hashchange", () => route());
route();
