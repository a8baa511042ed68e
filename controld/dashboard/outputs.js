// Simulcast outputs of a live input: list, add, enable/disable, delete. Loaded once and after each
// change (outputs change only through this page or the API, not by themselves).

import { alertBox, confirmAction, h, run } from "./dom.js";

export function outputsSection(client, uid, onApiError) {
  const alert = alertBox();
  const fail = (err) => onApiError(err, alert);
  const list = h("ul", { class: "outputs" });
  const url = h("input", { id: "output-url", type: "url", required: true, placeholder: "rtmps://example.com/live", spellcheck: false });
  const key = h("input", { id: "output-key", type: "password", autocomplete: "off", spellcheck: false });
  const add = h("button", { type: "submit" }, "Add output");
  const form = h(
    "form",
    { class: "add-output" },
    h("div", { class: "field" }, h("label", { htmlFor: "output-url" }, "Output URL"), url),
    h("div", { class: "field" }, h("label", { htmlFor: "output-key" }, "Output stream key"), key),
    add,
  );

  const load = async () => {
    const outputs = await client.listOutputs(uid);
    list.replaceChildren(...outputs.map(item));
  };
  const change = (button, action) =>
    run(
      button,
      alert,
      async () => {
        await action();
        await load();
      },
      fail,
    );

  const item = (output) => {
    const toggle = h("button", { type: "button" }, output.enabled ? "Disable" : "Enable");
    toggle.addEventListener("click", () => change(toggle, () => client.setOutputEnabled(uid, output.uid, !output.enabled)));
    const remove = h("button", { type: "button", class: "danger" }, "Delete");
    remove.addEventListener("click", async () => {
      if (await confirmAction(`Stop sending to ${output.url} and delete this output?`, "Delete output"))
        change(remove, () => client.deleteOutput(uid, output.uid));
    });
    return h(
      "li",
      {},
      h("span", { class: "output-url" }, output.url),
      h("span", { class: output.enabled ? "tag on" : "tag" }, output.enabled ? "enabled" : "disabled"),
      h("span", { class: "row" }, toggle, remove),
    );
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    change(add, async () => {
      await client.addOutput(uid, { url: url.value.trim(), streamKey: key.value, enabled: true });
      form.reset();
    });
  });

  load().catch(fail);
  return h("section", { class: "card", "aria-labelledby": "outputs-heading" }, h("h2", { id: "outputs-heading" }, "Outputs (simulcast)"), alert, list, form);
}
