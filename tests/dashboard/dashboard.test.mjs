// Drives controld's dashboard in Debian's Chromium while ffmpeg publishes real RTMP to the key the
// page shows. Started by tests/tests/dashboard.rs, which passes the running controld in the env:
// CONTROLD_HTTP, CONTROLD_ACCOUNT_ID, CONTROLD_API_TOKEN, DASHBOARD_ARTIFACTS (screenshot dir).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => process.env[name] || assert.fail(`${name} is not set`);
const HTTP = env("CONTROLD_HTTP");
const ACCOUNT_ID = env("CONTROLD_ACCOUNT_ID");
const API_TOKEN = env("CONTROLD_API_TOKEN");
const ARTIFACTS = env("DASHBOARD_ARTIFACTS");
const ORIGIN = `http://${HTTP}`;
// Generous: two cores are shared with other builds and tests.
const TIMEOUT_MS = 60_000;

// Publishes a 320x240 30 fps test picture with a tone: H.264 with a fixed keyframe interval
// (closed GOPs, no scene-cut keyframes; 4 s as the dashboard recommends) and AAC.
function publish(url, seconds, keyframeInterval = 4) {
  const keyint = 30 * keyframeInterval;
  const args = ["-hide_banner", "-loglevel", "warning", "-re"];
  args.push("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100");
  args.push("-t", String(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p");
  args.push("-x264-params", `keyint=${keyint}:min-keyint=${keyint}:scenecut=0`, "-c:a", "aac", "-b:a", "64k");
  args.push("-rw_timeout", "15000000", "-f", "flv", url);
  const child = spawn("ffmpeg", args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (chunk) => (log += chunk));
  child.exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, log })));
  return child;
}

// Waits for `promise`, failing early with ffmpeg's log if the publisher exits first.
function whilePublishing(publisher, promise) {
  const exited = publisher.exited.then(({ code, signal, log }) => {
    throw new Error(`the publisher exited (${code ?? signal}) too early:\n${log}`);
  });
  return Promise.race([promise, exited]);
}

// Waits for `child` to exit, killing it (and failing) after `ms`.
async function exitWithin(child, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${what}: ffmpeg still running after ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([child.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

test("dashboard: sign in, create, publish, preview, outputs, rotate key, delete, errored status", { timeout: 300_000 }, async (t) => {
  const profile = mkdtempSync(join(tmpdir(), "cfstream-chromium-"));
  mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
  });
  const page = browser.pages()[0] || (await browser.newPage());
  page.setDefaultTimeout(TIMEOUT_MS);
  const pageErrors = [];
  page.on("pageerror", (err) => pageErrors.push(err.message));
  const publishers = [];
  t.after(async () => {
    publishers.forEach((p) => p.kill("SIGKILL"));
    await browser.close();
    rmSync(profile, { recursive: true, force: true });
  });
  // The steps build on each other: after a failure the rest are skipped instead of timing out.
  let failed = false;
  const step = (name, body) =>
    t.test(name, { skip: failed && "an earlier step failed" }, async (st) => {
      try {
        await body(st);
      } catch (err) {
        failed = true;
        throw err;
      }
    });

  await step("controld serves the dashboard with hls.js embedded", async () => {
    const hls = await fetch(`${ORIGIN}/assets/hls.min.js`);
    assert.match(hls.headers.get("content-type"), /^text\/javascript/);
    const size = (await hls.arrayBuffer()).byteLength;
    assert.ok(size > 100_000, `hls.min.js is a ${size}-byte stand-in: run scripts/setup-dashboard.sh, then rebuild controld`);
  });

  await step("a wrong token is refused with the API's own message", async () => {
    const api = await fetch(`${ORIGIN}/client/v4/accounts/${ACCOUNT_ID}/stream/live_inputs`, { headers: { Authorization: "Bearer wrong" } });
    const apiMessage = (await api.json()).errors[0].message;
    await page.goto(`${ORIGIN}/`);
    await page.getByLabel("Account id").fill(ACCOUNT_ID);
    await page.getByLabel("API token").fill("wrong");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: apiMessage }).waitFor();
  });

  await step("sign in", async () => {
    await page.getByLabel("API token").fill(API_TOKEN);
    await page.getByLabel("API token").press("Enter");
    await page.getByRole("heading", { name: "Live Inputs" }).waitFor();
    assert.ok(!page.url().includes(API_TOKEN), "the token must not appear in the URL");
  });

  let uid;
  await step("create a live input through the form", async () => {
    await page.getByRole("link", { name: "Create Live Input" }).click();
    await page.getByLabel("Name").fill("Studio A");
    assert.equal(await page.getByLabel("Recording mode").inputValue(), "automatic");
    await page.getByRole("button", { name: "Create" }).click();
    await page.waitForURL(/#\/inputs\/[0-9a-f]{32}$/);
    uid = page.url().split("/").pop();
    await page.getByRole("heading", { name: "Studio A" }).waitFor();
  });

  let oldKey;
  let publisher;
  await step("the key is hidden until revealed; ffmpeg publishes to the URL and key shown", async () => {
    const key = page.getByLabel("Stream key", { exact: true });
    assert.equal(await key.getAttribute("type"), "password");
    // The SRT passphrase beside it is a secret field too: the key's own button.
    await page.locator(".copy-field", { has: key }).getByRole("button", { name: "Show" }).click();
    assert.equal(await key.getAttribute("type"), "text");
    oldKey = await key.inputValue();
    const srtUrl = await page.getByLabel("SRT URL", { exact: true }).inputValue();
    assert.match(srtUrl, /^srt:\/\/[^/?]+:\d+$/);
    assert.equal(await page.getByLabel("SRT stream ID", { exact: true }).inputValue(), uid);
    const passphrase = page.getByLabel("SRT passphrase", { exact: true });
    assert.equal(await passphrase.getAttribute("type"), "password");
    assert.ok(oldKey.length >= 32, `stream key "${oldKey}" is too short`);
    // Beside them, where players pull the live stream: a playback key of its own.
    const playbackKey = page.getByLabel("Playback key", { exact: true });
    assert.equal(await playbackKey.getAttribute("type"), "password");
    assert.notEqual(await playbackKey.inputValue(), oldKey);
    assert.equal(await page.getByLabel("SRT playback stream ID", { exact: true }).inputValue(), `play${uid}`);
    const rtmpUrl = await page.getByLabel("RTMP URL", { exact: true }).inputValue();
    publisher = publish(`${rtmpUrl.replace(/\/?$/, "/")}${oldKey}`, 40);
    publishers.push(publisher);
  });

  let connectedAt;
  await step("the status turns connected", async () => {
    await whilePublishing(publisher, page.locator('.input-status [data-status="connected"]').waitFor());
    connectedAt = Date.now();
  });

  await step("the live preview plays", async (st) => {
    const playing = () => {
      const video = document.getElementById("preview");
      return video.readyState >= 2 && !video.paused && video.currentTime > 0 && video.videoWidth === 320 && video.currentTime;
    };
    const started = await (await whilePublishing(publisher, page.waitForFunction(playing))).jsonValue();
    const startSeconds = (Date.now() - connectedAt) / 1000;
    st.diagnostic(`preview playing ${startSeconds.toFixed(1)} s after the status turned connected`);
    // One 4 s GOP makes the first segment; the page polls every 2 s and hls.js needs a moment.
    assert.ok(startSeconds < 15, `the preview took ${startSeconds.toFixed(1)} s to start`);
    await whilePublishing(publisher, page.waitForFunction((t0) => document.getElementById("preview").currentTime > t0 + 1.5, started));
    // The preview is the one viewer: its manifest probe and its player share the page's vid.
    await whilePublishing(publisher, page.waitForFunction(() => document.getElementById("preview-viewers").textContent === "Live viewers: 1"));
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-input.png"), fullPage: true });
  });

  await step("with allowedOrigins set to another site the preview still plays; that site without the dashboard's token is refused", async () => {
    const inputUrl = `${ORIGIN}/client/v4/accounts/${ACCOUNT_ID}/stream/live_inputs/${uid}`;
    const headers = { Authorization: `Bearer ${API_TOKEN}`, "Content-Type": "application/json" };
    const put = await fetch(inputUrl, { method: "PUT", headers, body: JSON.stringify({ recording: { allowedOrigins: ["customer.example"] } }) });
    assert.equal(put.status, 200, await put.text());
    // A fresh page: a new preview player with a new token, under the new settings.
    await page.reload();
    await page.getByRole("heading", { name: "Studio A" }).waitFor();
    const advanced = () => {
      const video = document.getElementById("preview");
      return video.readyState >= 2 && !video.paused && video.currentTime > 1 && video.videoWidth === 320;
    };
    await whilePublishing(publisher, page.waitForFunction(advanced));
    const state = await page.locator("#preview-state").textContent();
    assert.equal(state, "Live");
    // The preview plays LL-HLS and shows how far behind live it is.
    await whilePublishing(publisher, page.waitForFunction(() => /^Latency \d+\.\d s/.test(document.getElementById("preview-latency").textContent)));
    // The site itself plays; another site, by uid or with a customer's ordinary token, does not.
    const manifest = (id) => `${ORIGIN}/${id}/manifest/video.m3u8`;
    const customer = await fetch(manifest(uid), { headers: { Origin: "https://customer.example" } });
    assert.equal(customer.status, 200);
    const foreign = await fetch(manifest(uid), { headers: { Origin: "https://elsewhere.example" } });
    assert.equal(foreign.status, 403);
    assert.equal((await foreign.json()).errors[0].code, 10403);
    const tokenUrl = `${ORIGIN}/client/v4/accounts/${ACCOUNT_ID}/stream/${uid}/token`;
    const { token } = (await (await fetch(tokenUrl, { method: "POST", headers, body: "{}" })).json()).result;
    const withToken = await fetch(manifest(token), { headers: { Origin: "https://elsewhere.example" } });
    assert.equal(withToken.status, 403, "an ordinary signed token keeps allowedOrigins");
  });

  await step("at phone width nothing overflows sideways", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => document.documentElement.scrollWidth <= 390);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-input-390.png"), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await step("the list shows the input as connected", async () => {
    await page.getByRole("link", { name: "cfstream" }).click();
    await page.locator(`tr[data-uid="${uid}"] [data-status="connected"]`).waitFor();
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-list.png"), fullPage: true });
    await page.locator(`tr[data-uid="${uid}"]`).getByRole("link", { name: "Studio A" }).click();
    await page.getByRole("heading", { name: "Studio A" }).waitFor();
  });

  await step("the broadcast's recording is listed and plays", async () => {
    await page.locator("table.recordings").getByRole("button", { name: "Play" }).click();
    await page.waitForFunction(() => document.getElementById("recording-player").currentTime > 1);
  });

  await step("a simulcast output can be added, disabled and deleted while live", async () => {
    const outputsApi = async () => {
      const response = await fetch(`${ORIGIN}/client/v4/accounts/${ACCOUNT_ID}/stream/live_inputs/${uid}/outputs`, { headers: { Authorization: `Bearer ${API_TOKEN}` } });
      return (await response.json()).result;
    };
    // Nothing listens on port 9: the relay keeps failing, which must not disturb the input.
    await page.getByLabel("Output URL").fill("rtmp://127.0.0.1:9/live");
    await page.getByLabel("Output stream key").fill("relay-key");
    await page.getByRole("button", { name: "Add output" }).click();
    const item = page.locator("ul.outputs li", { hasText: "rtmp://127.0.0.1:9/live" });
    await item.locator(".tag", { hasText: "enabled" }).waitFor();
    assert.deepEqual((await outputsApi()).map((o) => [o.url, o.streamKey, o.enabled]), [["rtmp://127.0.0.1:9/live", "relay-key", true]]);
    await item.getByRole("button", { name: "Disable" }).click();
    await item.locator(".tag", { hasText: "disabled" }).waitFor();
    assert.equal((await outputsApi())[0].enabled, false);
    await item.getByRole("button", { name: "Delete" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete output" }).click();
    await item.waitFor({ state: "detached" });
    assert.deepEqual(await outputsApi(), []);
    await page.locator('.input-status [data-status="connected"]').waitFor();
  });

  await step("rotating the key shows a new one and the old one is refused", async () => {
    await page.getByRole("button", { name: "Rotate stream key" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Rotate key" }).click();
    await page.waitForFunction((old) => document.getElementById("field-stream-key").value !== old, oldKey);
    const newKey = await page.getByLabel("Stream key", { exact: true }).inputValue();
    assert.ok(newKey.length >= 32 && newKey !== oldKey);
    const rtmpUrl = await page.getByLabel("RTMP URL", { exact: true }).inputValue();
    const retry = publish(`${rtmpUrl.replace(/\/?$/, "/")}${oldKey}`, 10);
    publishers.push(retry);
    const { code, signal, log } = await exitWithin(retry, 30_000, "publishing with the old key");
    assert.ok(code !== 0 && signal === null, `ffmpeg with the old key exited ${code ?? signal}, expected a refusal:\n${log}`);
  });

  await step("the finished recording plays from its start", async () => {
    // Rotating the key cut the publisher: the recording ends (VOD, ENDLIST) and must still play.
    await page.locator("table.recordings td", { hasText: "ready" }).first().waitFor();
    await page.evaluate(() => {
      const video = document.getElementById("recording-player");
      video.pause();
      video.removeAttribute("src");
      video.load();
    });
    await page.locator("table.recordings").getByRole("button", { name: "Play" }).first().click();
    await page.waitForFunction(() => {
      const video = document.getElementById("recording-player");
      return video.currentTime > 1 && video.duration > 4;
    });
  });

  await step("disable and enable again", async () => {
    await page.getByRole("button", { name: "Disable" }).click();
    await page.locator(".input-status .tag", { hasText: "disabled" }).waitFor();
    await page.getByRole("button", { name: "Enable" }).click();
    await page.locator(".input-status .tag").waitFor({ state: "detached" });
    await page.getByRole("button", { name: "Disable" }).waitFor();
  });

  await step("delete asks first (Esc cancels), then removes the input", async () => {
    await page.getByRole("button", { name: "Delete live input" }).click();
    const focused = await page.evaluate(() => document.activeElement.textContent);
    assert.equal(focused, "Cancel", "the dialog must open with the harmless choice focused");
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "hidden" });
    const kept = await fetch(`${ORIGIN}/client/v4/accounts/${ACCOUNT_ID}/stream/live_inputs/${uid}`, { headers: { Authorization: `Bearer ${API_TOKEN}` } });
    assert.equal(kept.status, 200, "Cancel must keep the input");
    await page.getByRole("button", { name: "Delete live input" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete", exact: true }).click();
    await page.getByRole("heading", { name: "Live Inputs" }).waitFor();
    await page.locator(`tr[data-uid="${uid}"]`).waitFor({ state: "detached" });
  });

  await step("a 1 s keyframe interval shows as errored, in plain words", async () => {
    await page.getByRole("link", { name: "Create Live Input" }).click();
    await page.getByLabel("Name").fill("Studio B");
    await page.getByRole("button", { name: "Create" }).click();
    await page.getByRole("heading", { name: "Studio B" }).waitFor();
    const key = await page.getByLabel("Stream key", { exact: true }).inputValue();
    const rtmpUrl = await page.getByLabel("RTMP URL", { exact: true }).inputValue();
    const badGop = publish(`${rtmpUrl.replace(/\/?$/, "/")}${key}`, 20, 1);
    publishers.push(badGop);
    const status = page.locator('.input-status [data-status="errored"]');
    await status.waitFor();
    const text = await status.textContent();
    assert.ok(text.includes("ERR_GOP_OUT_OF_RANGE") && text.includes("Keyframe interval must be 4–10 s"), text);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard-errored.png") });
  });

  assert.deepEqual(pageErrors, [], "uncaught errors in the page");
});
