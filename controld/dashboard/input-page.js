// The page of one live input: connection details, key rotation, enable/disable/delete, the live
// preview, its recordings and its simulcast outputs.

import { api } from "./api.js";
import { alertBox, confirmAction, copyField, h, poll, run, time } from "./dom.js";
import { playRecording, startLivePreview } from "./player.js";
import { statusBadge, statusKey } from "./status.js";
import { outputsSection } from "./outputs.js";

export function inputPage(session, uid, { show, onApiError }) {
  const client = api(session);
  const alert = alertBox();
  const fail = (err) => onApiError(err, alert);
  const status = h("p", { class: "input-status", "aria-live": "polite" });
  const enable = h("button", { type: "button", class: "secondary" }, "…");
  const rotate = h("button", { type: "button", class: "secondary" }, "Rotate stream key");
  const remove = h("button", { type: "button", class: "danger" }, "Delete live input");
  const connect = h("section", { class: "card", "aria-labelledby": "connect-heading" });
  const preview = h("section", { class: "card", "aria-labelledby": "preview-heading" });
  const recordings = recordingsSection(client);
  const outputs = outputsSection(client, uid, onApiError);
  const stops = [recordings.stop];
  let input = null;

  const heading = show("Live input", alert, status, h("div", { class: "row actions" }, enable, rotate, remove), connect, preview, recordings.section, outputs);

  const render = (fresh) => {
    const keyChanged = !input || streamKey(fresh) !== streamKey(input);
    // The status line is a live region: rewrite it only when it changes, or it is read out at every poll.
    const statusChanged = !input || statusKey(fresh) !== statusKey(input);
    const first = !input;
    input = fresh;
    heading.textContent = (input.meta && input.meta.name) || input.uid;
    document.title = `${heading.textContent} · cfstream`;
    if (statusChanged) {
      const line = h("p", {}, "Status: ", statusBadge(input.status), input.enabled ? null : h("span", { class: "tag" }, "disabled"));
      status.replaceChildren(...line.childNodes);
    }
    enable.textContent = input.enabled ? "Disable" : "Enable";
    if (keyChanged) connect.replaceChildren(...connectDetails(input));
    if (first) stops.push(previewDetails(preview, client, input));
  };

  enable.addEventListener("click", () => run(enable, alert, async () => render(await client.setEnabled(uid, !input.enabled)), fail));
  rotate.addEventListener("click", async () => {
    const sure = await confirmAction("The current stream key stops working at once, and an encoder using it is cut off.", "Rotate key");
    if (sure) run(rotate, alert, async () => render(await client.rotateKeys(uid)), fail);
  });
  remove.addEventListener("click", async () => {
    const name = heading.textContent;
    const sure = await confirmAction(`Delete the live input “${name}”? Its recordings stay.`, "Delete");
    if (sure)
      run(
        remove,
        alert,
        async () => {
          await client.deleteInput(uid);
          location.hash = "#/";
        },
        fail,
      );
  });

  stops.push(
    poll(async (stopped) => {
      try {
        const [fresh, videos] = await Promise.all([client.getInput(uid), client.listRecordings(uid)]);
        if (stopped()) return;
        render(fresh);
        recordings.update(videos);
      } catch (err) {
        if (!stopped()) fail(err);
      }
    }),
  );
  return () => stops.forEach((stop) => stop());
}

function streamKey(input) {
  return (input.rtmps && input.rtmps.streamKey) || (input.rtmp && input.rtmp.streamKey) || "";
}

function connectDetails(input) {
  const fields = [];
  if (input.rtmps && input.rtmps.url) {
    fields.push(copyField("RTMPS URL", input.rtmps.url));
    fields.push(
      h(
        "p",
        { class: "hint", id: "rtmps-certificate" },
        "Unless controld was started with --tls-cert and --tls-key, RTMPS uses its self-signed certificate: encoders that verify certificates (OBS) refuse it. Give controld a real certificate, or use the RTMP URL.",
      ),
    );
  }
  if (input.rtmp && input.rtmp.url) fields.push(copyField("RTMP URL", input.rtmp.url));
  fields.push(copyField("Stream key", streamKey(input), { secret: true }));
  if (input.srt && input.srt.url) {
    fields.push(copyField("SRT URL", input.srt.url));
    fields.push(copyField("SRT stream ID", input.srt.streamId));
    fields.push(copyField("SRT passphrase", input.srt.passphrase, { secret: true }));
    fields.push(
      h(
        "p",
        { class: "hint", id: "srt-caller" },
        "SRT: caller mode, MPEG-TS with H.264 and AAC, e.g. ffmpeg … -f mpegts \"srt://host:port?streamid=ID&passphrase=PASSPHRASE\".",
      ),
    );
  }
  fields.push(...playbackDetails(input));
  const setting = (term, value) => [h("dt", {}, term), h("dd", {}, value)];
  return [
    h("h2", { id: "connect-heading" }, "Connect your encoder"),
    h(
      "div",
      { class: "connect" },
      h("div", {}, ...fields, input.keysRotatedAt ? h("p", { class: "hint" }, "Key rotated ", time(input.keysRotatedAt)) : null),
      h(
        "aside",
        { "aria-labelledby": "encoder-heading" },
        h("h3", { id: "encoder-heading" }, "Recommended encoder settings"),
        h(
          "dl",
          {},
          setting("Video", "H.264, x264 encoder"),
          setting("Audio", "AAC"),
          setting("Keyframe interval", "4 s (8 s if playback stutters), closed GOPs"),
          setting("Rate control", "CBR, 3000–8000 kbps"),
        ),
        h("p", { class: "hint" }, "ffmpeg at 30 fps:"),
        h("code", { class: "command" }, "ffmpeg -re -i INPUT -c:v libx264 -g 120 -keyint_min 120 -sc_threshold 0 -c:a aac -f flv URL/KEY"),
      ),
    ),
  ];
}

/** Where players pull the live stream (rtmpsPlayback, rtmpPlayback, srtPlayback). */
function playbackDetails(input) {
  const rtmp = input.rtmpsPlayback || input.rtmpPlayback;
  if (!rtmp) return [];
  const fields = [h("h3", { id: "playback-heading" }, "Pull the live stream")];
  if (input.rtmpsPlayback) fields.push(copyField("RTMPS playback URL", input.rtmpsPlayback.url));
  if (input.rtmpPlayback) fields.push(copyField("RTMP playback URL", input.rtmpPlayback.url));
  fields.push(copyField("Playback key", rtmp.streamKey, { secret: true }));
  if (input.srtPlayback) {
    fields.push(copyField("SRT playback stream ID", input.srtPlayback.streamId));
    fields.push(copyField("SRT playback passphrase", input.srtPlayback.passphrase, { secret: true }));
  }
  const hint = input.recording && input.recording.requireSignedURLs
    ? "This input requires signed URLs: players use a signed token (POST /stream/{uid}/token) as the playback key; SRT playback is off."
    : "While the input is live: ffmpeg -i URL/KEY, or an SRT caller with the playback stream ID and passphrase. The playback key cannot publish.";
  fields.push(h("p", { class: "hint", id: "playback-hint" }, hint));
  return fields;
}

function previewDetails(section, client, input) {
  const video = h("video", { id: "preview", muted: true, autoplay: true, playsInline: true, controls: true, "aria-label": "Live preview" });
  const state = h("p", { class: "hint", role: "status", id: "preview-state" });
  const latency = h("p", { class: "hint", id: "preview-latency" });
  const viewers = h("p", { class: "hint", id: "preview-viewers" });
  section.replaceChildren(h("h2", { id: "preview-heading" }, "Live preview"), video, state, latency, viewers);
  const report = (text) => (state.textContent = text);
  const showLatency = (ms) => (latency.textContent = `Latency ${(ms / 1000).toFixed(1)} s behind the server clock`);
  if (!input.recording || input.recording.mode !== "automatic") {
    video.hidden = true;
    report("Live playback needs recording mode “automatic”; this input only relays.");
    return () => {};
  }
  const stopPreview = startLivePreview(video, client.previewManifestUrl(input.uid), report, showLatency);
  const stopViewers = poll(async (stopped) => {
    const count = await client.liveViewers(input.uid).catch((err) => `unavailable (${err.message})`);
    if (stopped()) return;
    // This preview counts as one while it plays.
    viewers.textContent = count === null ? "Live viewers: hidden (hideLiveViewerCount)" : `Live viewers: ${count}`;
  });
  return () => {
    stopPreview();
    stopViewers();
  };
}

function recordingsSection(client) {
  const rows = h("tbody");
  const empty = h("p", {}, "No recordings yet.");
  const table = h(
    "table",
    { class: "recordings", hidden: true },
    h("thead", {}, h("tr", {}, ...["Recording", "State", "Started", "Duration", ""].map((t) => h("th", { scope: "col" }, t)))),
    rows,
  );
  const video = h("video", { id: "recording-player", controls: true, playsInline: true, hidden: true, "aria-label": "Recording" });
  const state = h("p", { class: "hint", role: "status" });
  let stopPlayback = () => {};
  let shown = "";

  // Through an owner preview token, like the live preview: the recording plays here whatever
  // its requireSignedURLs and allowedOrigins say.
  const play = async (recording) => {
    stopPlayback();
    video.hidden = false;
    state.textContent = `Playing ${recordingName(recording)}`;
    const url = await client
      .previewManifestUrl(recording.uid)()
      .catch((err) => {
        state.textContent = `Playback unavailable: ${err.message}`;
        return null;
      });
    if (!url) return;
    stopPlayback = playRecording(video, url, (text) => (state.textContent = text));
    video.focus();
  };
  const row = (recording) =>
    h(
      "tr",
      {},
      h("td", { "data-label": "Recording" }, recordingName(recording)),
      h("td", { "data-label": "State" }, (recording.status && recording.status.state) || "—"),
      h("td", { "data-label": "Started" }, time(recording.created)),
      h("td", { "data-label": "Duration" }, recording.duration > 0 ? `${Math.round(recording.duration)} s` : "—"),
      h("td", {}, recording.playback && recording.playback.hls ? h("button", { type: "button", onclick: () => play(recording) }, "Play") : null),
    );

  return {
    stop: () => stopPlayback(),
    section: h("section", { class: "card", "aria-labelledby": "recordings-heading" }, h("h2", { id: "recordings-heading" }, "Recordings"), empty, table, video, state),
    update(videos) {
      const signature = JSON.stringify(videos);
      if (signature === shown) return;
      shown = signature;
      rows.replaceChildren(...videos.map(row));
      table.hidden = videos.length === 0;
      empty.hidden = videos.length > 0;
    },
  };
}

function recordingName(recording) {
  return (recording.meta && recording.meta.name) || recording.uid;
}
