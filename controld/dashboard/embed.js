// The embeddable player (GET /{id}/iframe and /{id}/watch): plays the manifest its <video>
// names with hls.js (a classic script defining the global `Hls`; Safari plays HLS natively).
// A live input's manifest answers 204 while nobody publishes: the page waits for the broadcast,
// and goes back to waiting when playback fails (the broadcast ended).

const RETRY_MS = 2000;
const video = document.getElementById("player");
const state = document.getElementById("player-state");
const manifest = video.dataset.manifest;
const startTime = Number(video.dataset.startTime) || 0;

function report(text) {
  state.textContent = text;
  state.hidden = !text;
}

function retry(why) {
  report(why);
  setTimeout(start, RETRY_MS);
}

async function start() {
  const response = await fetch(manifest, { cache: "no-store" }).catch(() => null);
  if (!response || response.status !== 200) {
    retry(response && response.status !== 204 ? `HTTP ${response.status}` : "Waiting for the live stream…");
    return;
  }
  report("");
  if (window.Hls && Hls.isSupported()) playWithHlsJs();
  else if (video.canPlayType("application/vnd.apple.mpegurl")) playNatively();
  else report(window.hlsUnavailableReason || "This browser cannot play HLS.");
}

function playWithHlsJs() {
  const lazy = video.preload === "none";
  const hls = new Hls({ startPosition: startTime > 0 ? startTime : -1, autoStartLoad: !lazy, liveDurationInfinity: true });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    if (video.autoplay) video.play().catch(() => {});
  });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (!data.fatal) return;
    hls.destroy();
    retry(`Playback stopped (${data.details}); retrying…`);
  });
  if (lazy) video.addEventListener("play", () => hls.startLoad(), { once: true });
  hls.loadSource(manifest);
  hls.attachMedia(video);
}

function playNatively() {
  if (startTime > 0) video.addEventListener("loadedmetadata", () => (video.currentTime = startTime), { once: true });
  video.src = manifest;
  if (video.autoplay) video.play().catch(() => {});
}

start();
