// HLS playback in a <video> with hls.js (a classic script served at /assets/hls.min.js that
// defines the global `Hls`; when controld was built without it, a stand-in defines
// `hlsUnavailableReason` instead).

const LIVE_POLL_MS = 2000;
const LATENCY_POLL_MS = 1000;

// `onLatency(ms)` is called once a second while a live stream plays: how far the picture on
// screen is behind the server's clock (its EXT-X-PROGRAM-DATE-TIME against now).
function attach(video, url, report, onFatal, onLatency = () => {}) {
  if (!window.Hls) {
    report(window.hlsUnavailableReason || "preview unavailable: hls.js did not load");
    return () => {};
  }
  if (!Hls.isSupported()) {
    // Safari plays HLS natively.
    video.src = url;
    video.play().catch(() => {});
    return () => video.removeAttribute("src");
  }
  // lowLatencyMode: LL-HLS parts and blocking reloads when the playlist offers them.
  const hls = new Hls({ liveDurationInfinity: true, lowLatencyMode: true });
  hls.on(Hls.Events.MANIFEST_PARSED, () => video.play().catch(() => {}));
  hls.on(Hls.Events.ERROR, (_event, data) => {
    if (data.fatal) onFatal(`${data.type}: ${data.details}`);
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  const latencyTimer = setInterval(() => {
    if (hls.playingDate && !video.paused) onLatency(Date.now() - hls.playingDate.getTime());
  }, LATENCY_POLL_MS);
  let destroyed = false;
  return () => {
    clearInterval(latencyTimer);
    if (!destroyed) hls.destroy();
    destroyed = true;
  };
}

// Live preview of an input. Its manifest answers 204 while nobody publishes, so poll it until it
// answers 200, play, and go back to polling when playback fails (the broadcast ended).
// `manifestUrl` is an async function: each (re)start asks it for the URL to play.
export function startLivePreview(video, manifestUrl, report, onLatency) {
  let stopped = false;
  let detach = null;
  let timer = null;

  const poll = async () => {
    timer = null;
    const url = await manifestUrl().catch((err) => {
      report(`Preview unavailable: ${err.message}`);
      return null;
    });
    if (stopped) return;
    if (!url) {
      timer = setTimeout(poll, LIVE_POLL_MS);
      return;
    }
    const response = await fetch(url, { cache: "no-store" }).catch(() => null);
    if (stopped) return;
    if (!response || response.status !== 200) {
      report(response && response.status !== 204 ? `Preview: HTTP ${response.status}` : "Waiting for the encoder…");
      timer = setTimeout(poll, LIVE_POLL_MS);
      return;
    }
    report("Live");
    detach = attach(
      video,
      url,
      report,
      (reason) => {
        detach();
        detach = null;
        report(`Preview stopped (${reason}); waiting for the encoder…`);
        if (!stopped) timer = setTimeout(poll, LIVE_POLL_MS);
      },
      onLatency,
    );
  };
  poll();

  return () => {
    stopped = true;
    clearTimeout(timer);
    if (detach) detach();
  };
}

export function playRecording(video, manifestUrl, report) {
  const detach = attach(video, manifestUrl, report, (reason) => {
    detach();
    report(`Playback failed (${reason})`);
  });
  return detach;
}
