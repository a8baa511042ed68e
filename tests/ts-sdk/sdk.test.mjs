// Drives controld's Stream API with Cloudflare's TypeScript SDK (npm `cloudflare`): live inputs,
// a broadcast published with ffmpeg over RTMPS to `liveInput.rtmps.streamKey`, its recording
// (get, edit, list), storage usage, the webhook and bad input. Started by
// tests/tests/controld_sdk.rs with CF_BASE_URL (…/client/v4), CF_ACCOUNT_ID, CF_API_TOKEN.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import Cloudflare from "cloudflare";

const env = (name) => process.env[name] || assert.fail(`${name} is not set`);
const BASE_URL = env("CF_BASE_URL");
const account_id = env("CF_ACCOUNT_ID");
const client = new Cloudflare({ apiToken: env("CF_API_TOKEN"), baseURL: BASE_URL, maxRetries: 0 });
const UNKNOWN = "0123456789abcdef0123456789abcdef";

async function waitFor(what, predicate, ms = 90_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

function publish(url, seconds) {
  const args = ["-hide_banner", "-loglevel", "error", "-nostdin", "-re"];
  args.push("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100");
  args.push("-t", String(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p");
  args.push("-x264-params", "keyint=120:min-keyint=120:scenecut=0", "-c:a", "aac", "-b:a", "64k");
  // controld's default certificate is self-signed; ffmpeg verifies nothing unless asked.
  args.push("-tls_verify", "0", "-f", "flv", url);
  const child = spawn("ffmpeg", args, { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr.on("data", (chunk) => (log += chunk));
  child.exited = new Promise((resolve) => child.on("exit", (code) => resolve({ code, log })));
  return child;
}

test("the TypeScript SDK against controld", { timeout: 240_000 }, async (t) => {
  const liveInputs = client.stream.liveInputs;
  let input;
  await t.test("live inputs: create with rtmps, get, list, update", async () => {
    input = await liveInputs.create({ account_id, meta: { name: "ts input" }, recording: { mode: "automatic", timeoutSeconds: 1 } });
    assert.match(input.uid, /^[0-9a-f]{32}$/);
    assert.match(input.rtmps.url, /^rtmps:\/\//);
    assert.ok(input.rtmps.streamKey.endsWith(`k${input.uid}`), input.rtmps.streamKey);
    assert.equal((await liveInputs.get(input.uid, { account_id })).uid, input.uid);
    const listed = await liveInputs.list({ account_id });
    assert.ok(listed.liveInputs.some((i) => i.uid === input.uid));
    const updated = await liveInputs.update(input.uid, { account_id, defaultCreator: "ts-creator" });
    assert.equal(updated.defaultCreator, "ts-creator");
  });

  let video;
  await t.test("publish over RTMPS with the SDK's key; the recording is listed", async () => {
    const ffmpeg = publish(input.rtmps.url + input.rtmps.streamKey, 6);
    t.after(() => ffmpeg.kill("SIGKILL"));
    const { code, log } = await ffmpeg.exited;
    assert.equal(code, 0, `ffmpeg over RTMPS: ${log}`);
    video = await waitFor("a ready recording", async () => {
      for await (const v of client.stream.list({ account_id, live_input_id: input.uid })) if (v.status.state === "ready") return v;
      return null;
    });
    assert.equal(video.creator, "ts-creator", "recordings inherit defaultCreator");
    assert.deepEqual(video.input, { width: 320, height: 240 }, "the recording's frame size");
    assert.ok(video.size > 0 && video.preview.endsWith(`/${video.uid}/watch`), `size and preview: ${JSON.stringify(video)}`);
    const none = [];
    for await (const v of client.stream.list({ account_id, live_input_id: UNKNOWN })) none.push(v);
    assert.deepEqual(none, [], "an unknown live_input_id lists nothing");
  });

  await t.test("edit a video, and storage usage", async () => {
    const scheduledDeletion = new Date(Date.now() + 40 * 86400_000).toISOString();
    const edited = await client.stream.edit(video.uid, {
      account_id,
      meta: { name: "edited by the TS SDK" },
      allowedOrigins: ["example.com"],
      requireSignedURLs: false,
      scheduledDeletion,
      creator: "ts-editor",
      thumbnailTimestampPct: 0.25,
      publicDetails: { title: "TS title" },
    });
    assert.deepEqual(edited.meta, { name: "edited by the TS SDK" });
    assert.deepEqual(edited.allowedOrigins, ["example.com"]);
    assert.equal(edited.creator, "ts-editor");
    assert.equal(edited.thumbnailTimestampPct, 0.25);
    assert.equal(Date.parse(edited.scheduledDeletion), Date.parse(scheduledDeletion));
    assert.equal((await client.stream.get(video.uid, { account_id })).publicDetails.title, "TS title");
    const usage = await client.stream.videos.storageUsage({ account_id, creator: "ts-editor" });
    assert.equal(usage.creator, "ts-editor");
    assert.equal(usage.videoCount, 1);
    assert.ok(Math.abs(usage.totalStorageMinutes - edited.duration / 60) < 0.01, JSON.stringify(usage));
    assert.equal(usage.totalStorageMinutesLimit, null);
  });

  await t.test("bad input: a wrong type names the field, an unknown video is 404", async () => {
    await assert.rejects(client.stream.edit(video.uid, { account_id, requireSignedURLs: "yes" }), (err) => {
      assert.ok(err instanceof Cloudflare.BadRequestError, String(err));
      assert.match(err.message, /requireSignedURLs/);
      return true;
    });
    await assert.rejects(client.stream.edit(UNKNOWN, { account_id, meta: {} }), Cloudflare.NotFoundError);
    await assert.rejects(client.stream.get(UNKNOWN, { account_id }), Cloudflare.NotFoundError);
  });

  await t.test("webhook: snake_case body, DELETE answers a string", async () => {
    const hook = await client.stream.webhooks.update({ account_id, notification_url: "https://hooks.example.com/ts" });
    assert.equal(hook.notificationUrl, "https://hooks.example.com/ts");
    assert.equal((await client.stream.webhooks.get({ account_id })).notificationUrl, "https://hooks.example.com/ts");
    assert.equal(typeof (await client.stream.webhooks.delete({ account_id })), "string");
  });

  await t.test("delete the video and the input", async () => {
    await client.stream.delete(video.uid, { account_id });
    await liveInputs.delete(input.uid, { account_id });
    await assert.rejects(liveInputs.get(input.uid, { account_id }), Cloudflare.NotFoundError);
  });
});
