// Turns a live input's Cloudflare-shaped `status` into one of four words a person understands,
// plus the last error code and what it means.

import { h } from "./dom.js";

const ERROR_MEANINGS = {
  ERR_GOP_OUT_OF_RANGE: "Keyframe interval must be 4–10 s with closed GOPs",
  ERR_UNSUPPORTED_VIDEO_CODEC: "Send H.264 video",
  ERR_UNSUPPORTED_AUDIO_CODEC: "Send AAC audio",
  ERR_STREAM_KEY_IN_USE: "Another encoder is already publishing with this key",
};

const CONNECTED_STATES = new Set(["connected", "reconnected"]);

export function describeStatus(status) {
  const current = status && status.current;
  if (!current) return { word: "disconnected" };
  if (CONNECTED_STATES.has(current.state)) return { word: "connected" };
  if (current.state === "reconnecting") return { word: "reconnecting" };
  // controld sets `errorCode` (and `errorMessage`) only on the entry of a failed attempt.
  const code = current.errorCode;
  if (code) return { word: "errored", code, meaning: ERROR_MEANINGS[code] || current.errorMessage || "" };
  return { word: "disconnected" };
}

// What the page shows of an input's status: equal keys mean nothing visible changed (the status's
// `statusLastSeen` moves on every few seconds while connected).
export function statusKey(input) {
  return JSON.stringify([describeStatus(input.status), input.enabled]);
}

export function statusBadge(status) {
  const { word, code, meaning } = describeStatus(status);
  return h(
    "span",
    { class: `status status-${word}`, "data-status": word },
    h("span", { class: "status-word" }, word),
    code ? h("span", { class: "status-error" }, h("code", {}, code), meaning ? `: ${meaning}` : "") : null,
  );
}
