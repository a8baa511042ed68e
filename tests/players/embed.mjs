// Embeds controld's player page in an <iframe> on a page of another origin (a port of its own)
// in Debian's Chromium, and prints what happened as one JSON line on stdout. Used by
// tests/tests/controld_embed.rs.
//
//   node embed.mjs --url IFRAME_URL --port PORT [--seconds 30] [--no-referrer]
//
// `--no-referrer`: the embedding page sends no Referer, so only the player page's
// Content-Security-Policy (frame-ancestors) can refuse the framing.
//
// Printed: `frameStatus` (HTTP status of the frame's page, null if none was seen), `framed`
// (the player's <video> is in the frame), `advancedSeconds` (how far its currentTime moved
// after it started), `consoleMessages` (the embedding page's, where Chromium reports a refused
// frame), `pageErrors`.

import { createServer } from "node:http";
import { chromium } from "playwright-core";

function parseArgs(argv) {
  const args = { url: null, port: 0, seconds: 30, noReferrer: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--url") args.url = argv[++i];
    else if (flag === "--port") args.port = Number(argv[++i]);
    else if (flag === "--seconds") args.seconds = Number(argv[++i]);
    else if (flag === "--no-referrer") args.noReferrer = true;
    else throw new Error(`unknown argument ${flag}`);
  }
  if (!args.url) throw new Error("--url is required");
  if (!(args.port > 0)) throw new Error("--port is required");
  return args;
}

function embeddingPage(url, noReferrer) {
  const policy = noReferrer ? `<meta name="referrer" content="no-referrer">` : "";
  const src = url.replaceAll("&", "&amp;").replaceAll('"', "&quot;");
  return `<!doctype html><meta charset="utf-8">${policy}<title>customer site</title>
<iframe id="player" src="${src}" width="640" height="360" allow="autoplay" style="border: none"></iframe>`;
}

function serve(port, html) {
  const server = createServer((req, res) => {
    if (new URL(req.url, "http://x").pathname === "/") res.writeHead(200, { "content-type": "text/html" }).end(html);
    else res.writeHead(404).end();
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

// The player's state in `frame`, or null when the frame holds no player (refused, error page).
async function playerState(frame) {
  try {
    return await frame.evaluate(() => {
      const video = document.getElementById("player");
      return video ? { currentTime: video.currentTime, paused: video.paused } : null;
    });
  } catch {
    return null;
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const server = await serve(args.port, embeddingPage(args.url, args.noReferrer));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
  });
  const report = { frameStatus: null, framed: false, advancedSeconds: 0, consoleMessages: [], pageErrors: [] };
  try {
    const page = await browser.newPage();
    page.on("console", (m) => report.consoleMessages.push(m.text()));
    page.on("pageerror", (e) => report.pageErrors.push(String(e)));
    const framePath = new URL(args.url).pathname;
    page.on("response", (r) => {
      if (new URL(r.url()).pathname === framePath) report.frameStatus = r.status();
    });
    await page.goto(`http://127.0.0.1:${args.port}/`);
    const deadline = Date.now() + args.seconds * 1000;
    let started = null;
    let refusedAt = null;
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      // Refused (an error status, or Chromium reporting the CSP): watched 2 s more, then done.
      const refused = report.frameStatus >= 400 || report.consoleMessages.some((m) => m.includes("frame-ancestors"));
      if (refused && refusedAt === null) refusedAt = Date.now();
      if (refusedAt !== null && Date.now() - refusedAt > 2000) break;
      const frame = page.frames().find((f) => f !== page.mainFrame());
      const state = frame ? await playerState(frame) : null;
      if (!state) continue;
      report.framed = true;
      if (started === null && state.currentTime > 0) started = state.currentTime;
      if (started !== null) report.advancedSeconds = state.currentTime - started;
      if (report.advancedSeconds >= 3) break;
    }
  } finally {
    await browser.close();
    server.close();
  }
  process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch((e) => {
  process.stderr.write(`embed.mjs: ${e.stack || e}\n`);
  process.exit(2);
});
