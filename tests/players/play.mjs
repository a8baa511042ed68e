// Plays one manifest with a real player in Debian's Chromium and prints what happened as one JSON
// line on stdout. Used by tests/tests/players.rs (assertions) and bench/player-latency.sh
// (latency figures).
//
//   node play.mjs --player hls|dash --url URL [--seconds 30] [--until-ended]
//
// hls.js is the copy controld embeds in its dashboard (controld/dashboard/node_modules), dash.js
// comes from this directory's node_modules. The page is served from a port of its own, so every
// manifest and segment request is cross-origin, as on a customer's site.
//
// Printed: `latencyMs` samples once a second (hls.js: Date.now() − playingDate, i.e. the
// PROGRAM-DATE-TIME of the frame on screen; dash.js: its live latency from the MPD's clock),
// `fatal` errors, `stalls` (seconds in which playback did not advance while it should have),
// `advancedSeconds` (media time played), `ended` ('ended' fired), `atEnd` (played to within
// 0.5 s of the duration).

import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const SCRIPTS = {
  "/hls.js": join(here, "../../controld/dashboard/node_modules/hls.js/dist/hls.min.js"),
  "/dash.js": join(here, "node_modules/dashjs/dist/modern/umd/dash.all.min.js"),
};

function parseArgs(argv) {
  const args = { player: "hls", url: null, seconds: 30, untilEnded: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--player") args.player = argv[++i];
    else if (flag === "--url") args.url = argv[++i];
    else if (flag === "--seconds") args.seconds = Number(argv[++i]);
    else if (flag === "--until-ended") args.untilEnded = true;
    else throw new Error(`unknown argument ${flag}`);
  }
  if (!args.url) throw new Error("--url is required");
  if (!["hls", "dash"].includes(args.player)) throw new Error(`--player must be hls or dash, not ${args.player}`);
  if (!(args.seconds > 0)) throw new Error("--seconds must be a positive number");
  return args;
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>player</title>
<video id="v" muted autoplay playsinline></video>
<script src="/hls.js"></script><script src="/dash.js"></script>
<script>
window.report = { fatal: [], errors: [], latencyMs: [], stalls: 0, ended: false, atEnd: false, playing: false, advancedSeconds: 0 };
window.startPlayer = (kind, url) => {
  const video = document.getElementById("v");
  const r = window.report;
  video.addEventListener("playing", () => (r.playing = true));
  video.addEventListener("ended", () => (r.ended = true));
  let latency;
  if (kind === "hls") {
    const hls = new Hls({ lowLatencyMode: true });
    hls.on(Hls.Events.ERROR, (_e, d) => (d.fatal ? r.fatal : r.errors).push(d.type + ": " + d.details));
    hls.loadSource(url);
    hls.attachMedia(video);
    latency = () => (hls.playingDate ? Date.now() - hls.playingDate.getTime() : null);
  } else {
    const player = dashjs.MediaPlayer().create();
    player.on(dashjs.MediaPlayer.events.ERROR, (e) => r.fatal.push("dash: " + JSON.stringify(e.error && (e.error.message || e.error.code))));
    player.initialize(video, url, true);
    latency = () => {
      const s = player.isDynamic() ? player.getCurrentLiveLatency() : NaN;
      return Number.isFinite(s) && s > 0 ? Math.round(s * 1000) : null;
    };
  }
  let last = null;
  setInterval(() => {
    // The element's own ended state too: an 'ended' event can go by unseen (seen with dash.js
    // on a loaded machine, paused at the end of a recording).
    if (video.ended) r.ended = true;
    // Played to the end of the presentation (whether or not the player then fires 'ended').
    if (Number.isFinite(video.duration) && video.currentTime >= video.duration - 0.5) r.atEnd = true;
    if (r.ended) return;
    if (r.playing && last !== null) {
      const step = video.currentTime - last;
      if (step <= 0.05 && !video.paused) r.stalls += 1;
      else if (step > 0) r.advancedSeconds += step;
    }
    if (r.playing) last = video.currentTime;
    const ms = r.playing ? latency() : null;
    if (ms !== null) r.latencyMs.push(ms);
  }, 1000);
};
</script>`;

function serve() {
  const server = createServer((req, res) => {
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(PAGE);
    } else if (SCRIPTS[path]) {
      res.writeHead(200, { "content-type": "text/javascript" }).end(readFileSync(SCRIPTS[path]));
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

function median(values) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const server = await serve();
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
  });
  try {
    const page = await browser.newPage();
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    await page.evaluate(([kind, url]) => window.startPlayer(kind, url), [args.player, args.url]);
    const deadline = Date.now() + args.seconds * 1000;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      if (args.untilEnded && (await page.evaluate(() => window.report.ended))) break;
    }
    const report = await page.evaluate(() => window.report);
    report.pageErrors = pageErrors;
    report.medianLatencyMs = median(report.latencyMs);
    report.player = args.player;
    report.url = args.url;
    process.stdout.write(JSON.stringify(report) + "\n");
  } finally {
    await browser.close();
    server.close();
  }
}

main().catch((e) => {
  process.stderr.write(`play.mjs: ${e.stack || e}\n`);
  process.exit(2);
});
