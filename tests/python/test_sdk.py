"""Drives controld's Stream API with the official Cloudflare Python SDK, with its strict
response validation: live inputs, a broadcast published with ffmpeg over RTMPS to
`live_input.rtmps.stream_key` on controld's default start, its recording (get, edit, list,
storage usage), webhooks, signing keys, tokens and outputs.

Run by tests/tests/controld_sdk.rs with CF_BASE_URL (…/client/v4), CF_ACCOUNT_ID and
CF_API_TOKEN pointing at a running controld. Exits non-zero on the first failed check.
"""

import datetime
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import cloudflare
from cloudflare import Cloudflare

base_url = os.environ["CF_BASE_URL"]
account_id = os.environ["CF_ACCOUNT_ID"]
client = Cloudflare(
    api_token=os.environ["CF_API_TOKEN"], base_url=base_url, max_retries=0, _strict_response_validation=True
)
live_inputs = client.stream.live_inputs


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)


created = live_inputs.create(
    account_id=account_id,
    meta={"name": "sdk input"},
    default_creator="sdk-user",
    delete_recording_after_days=45,
    recording={"mode": "automatic", "timeout_seconds": 10, "require_signed_urls": False},
)
check(created is not None and re.fullmatch(r"[0-9a-f]{32}", created.uid or ""), f"uid: {created}")
check(created.meta == {"name": "sdk input"}, f"meta: {created.meta}")
check(created.recording.mode == "automatic", f"mode: {created.recording}")
check(created.recording.timeout_seconds == 10, f"timeoutSeconds: {created.recording}")
check(created.delete_recording_after_days == 45, f"deleteRecordingAfterDays: {created}")
check(created.created is not None and created.modified is not None, "created/modified parse as datetimes")
check(created.status is None, f"status before the first connection: {created.status}")
rtmp = created.model_extra.get("rtmp") if created.model_extra else None
check(rtmp and rtmp["streamKey"].endswith("k" + created.uid), f"rtmp: {rtmp}")

fetched = live_inputs.get(created.uid, account_id=account_id)
check(fetched.uid == created.uid and fetched.meta == created.meta, f"get: {fetched}")

listed = live_inputs.list(account_id=account_id)
check(listed.total >= 1, f"list total: {listed}")
check(any(i.uid == created.uid for i in listed.live_inputs), "created input is listed")

updated = live_inputs.update(
    created.uid,
    account_id=account_id,
    meta={"name": "renamed"},
    recording={"mode": "off"},
)
check(updated.meta == {"name": "renamed"}, f"updated meta: {updated.meta}")
check(updated.recording.mode == "off", f"updated mode: {updated.recording}")
check(updated.recording.timeout_seconds == 10, "fields absent from the update are kept")
check(updated.modified >= created.modified, "modified moves forward")

try:
    live_inputs.update(created.uid, account_id=account_id, delete_recording_after_days=3)
    check(False, "deleteRecordingAfterDays=3 was accepted")
except cloudflare.BadRequestError as e:
    check("deleteRecordingAfterDays" in str(e), f"validation error names the field: {e}")

live_inputs.delete(created.uid, account_id=account_id)
try:
    live_inputs.get(created.uid, account_id=account_id)
    check(False, "deleted input still readable")
except cloudflare.NotFoundError:
    pass

try:
    Cloudflare(api_token="wrong-token", base_url=base_url, max_retries=0).stream.live_inputs.list(
        account_id=account_id
    )
    check(False, "a wrong token was accepted")
except cloudflare.AuthenticationError:
    pass

print("sdk: create/get/list/update/delete ok")

UNKNOWN = "0123456789abcdef0123456789abcdef"
http_base = base_url.removesuffix("/client/v4")


def wait_for(what, predicate, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    check(False, f"timed out waiting for {what}")


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


# RTMPS on the default start: publish to the URL and key the SDK hands out.
live = live_inputs.create(
    account_id=account_id, meta={"name": "rtmps input"}, recording={"mode": "automatic", "timeout_seconds": 1}
)
check(live.rtmps is not None and live.rtmps.url.startswith("rtmps://"), f"rtmps: {live.rtmps}")
check(live.rtmps.stream_key.endswith("k" + live.uid), f"rtmps key: {live.rtmps}")
# ffmpeg does not verify certificates unless asked (tls_verify 0 is its default; said here
# because controld's certificate is self-signed).
ffmpeg = subprocess.Popen(
    ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re"]
    + ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
    + ["-t", "10", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    + ["-x264-params", "keyint=120:min-keyint=120:scenecut=0", "-c:a", "aac", "-b:a", "64k"]
    + ["-tls_verify", "0", "-f", "flv", live.rtmps.url + live.rtmps.stream_key],
    stderr=subprocess.PIPE,
)
# The SDK types `status` as one of the spec's strings, but Cloudflare answers with the object
# `{current, history}` (as controld does): a status is read without strict validation.
lenient = Cloudflare(api_token=os.environ["CF_API_TOKEN"], base_url=base_url, max_retries=0)
try:
    current = wait_for(
        "the RTMPS publisher",
        lambda: (s := lenient.stream.live_inputs.get(live.uid, account_id=account_id).status)
        and s["current"]["state"] == "connected"
        and s["current"],
    )
    check(current["ingestProtocol"] == "rtmps", f"ingest protocol: {current}")
    manifest = f"{http_base}/{live.uid}/manifest/video.m3u8"
    wait_for("the live playlist", lambda: http_status(manifest) == 200)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-rw_timeout", "20000000", "-show_entries", "stream=codec_name", "-of", "json", manifest],
        capture_output=True,
        text=True,
        timeout=120,
    )
    codecs = sorted(s["codec_name"] for s in json.loads(probe.stdout or "{}").get("streams", []))
    check(probe.returncode == 0 and codecs == ["aac", "h264"], f"ffprobe on the live HLS: {codecs} {probe.stderr}")
    check(ffmpeg.wait(timeout=120) == 0, f"ffmpeg over RTMPS: {ffmpeg.stderr.read().decode()}")
finally:
    ffmpeg.kill()

# The recording: listed by live input, then ready.
stream = client.stream
video = wait_for(
    "the recording to be ready",
    lambda: next((v for v in stream.list(account_id=account_id, live_input_id=live.uid) if v.status.state == "ready"), None),
)
check(video.live_input == live.uid and video.duration > 5, f"recording: {video}")
check(
    video.input.width == 320 and video.input.height == 240 and video.size > 0,
    f"the recording's frame size and bytes: {video}",
)
check(video.preview.endswith(f"/{video.uid}/watch") and video.thumbnail.endswith("/thumbnails/thumbnail.jpg"), f"{video}")
check(list(stream.list(account_id=account_id, live_input_id=UNKNOWN)) == [], "an unknown live_input_id lists nothing")
check(stream.get(video.uid, account_id=account_id).uid == video.uid, "get the video")

in_40_days = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=40)
edited = stream.edit(
    video.uid,
    account_id=account_id,
    meta={"name": "edited by the SDK"},
    require_signed_urls=False,
    allowed_origins=["example.com"],
    scheduled_deletion=in_40_days,
    creator="sdk-creator",
    thumbnail_timestamp_pct=0.5,
    max_duration_seconds=600,
    public_details={"title": "SDK title", "share_link": "https://example.com/watch"},
    uid=video.uid,
)
check(edited.meta == {"name": "edited by the SDK"} and edited.creator == "sdk-creator", f"edit: {edited}")
check(edited.allowed_origins == ["example.com"] and edited.thumbnail_timestamp_pct == 0.5, f"edit: {edited}")
check(abs((edited.scheduled_deletion - in_40_days).total_seconds()) < 1, f"scheduledDeletion: {edited.scheduled_deletion}")
check(edited.public_details.title == "SDK title", f"publicDetails: {edited.public_details}")
check(stream.get(video.uid, account_id=account_id).creator == "sdk-creator", "the edit is stored")
try:
    stream.edit(video.uid, account_id=account_id, thumbnail_timestamp_pct="half")
    check(False, "a wrong type was accepted")
except cloudflare.BadRequestError as e:
    check("thumbnailTimestampPct" in str(e), f"the error names the field: {e}")
for call in (lambda: stream.get(UNKNOWN, account_id=account_id), lambda: stream.edit(UNKNOWN, account_id=account_id, meta={})):
    try:
        call()
        check(False, "an unknown video was found")
    except cloudflare.NotFoundError:
        pass

usage = stream.videos.storage_usage(account_id=account_id, creator="sdk-creator")
check(usage.creator == "sdk-creator" and usage.video_count == 1, f"storage usage: {usage}")
check(abs(usage.total_storage_minutes - edited.duration / 60) < 0.01, f"storage minutes: {usage} vs {edited.duration}")
check(usage.total_storage_minutes_limit is None, f"no limit configured: {usage}")
check(stream.videos.storage_usage(account_id=account_id).video_count >= 1, "storage usage of the account")

# Webhook: the SDK's snake_case body, and DELETE's string result.
webhook = stream.webhooks.update(account_id=account_id, body_notification_url_1="https://hooks.example.com/sdk")
check(webhook.notification_url == "https://hooks.example.com/sdk" and len(webhook.secret) == 32, f"webhook: {webhook}")
check(stream.webhooks.get(account_id=account_id).notification_url == "https://hooks.example.com/sdk", "webhook get")
check(isinstance(stream.webhooks.delete(account_id=account_id), str), "webhook delete answers a string")

# Signed URLs: a key, a token with it, revoke.
key = stream.keys.create(account_id=account_id)
check(any(k.id == key.id for k in stream.keys.get(account_id=account_id)), "keys listed")
token = stream.token.create(video.uid, account_id=account_id, id=key.id, pem=key.pem)
check(token.token.count(".") == 2, f"token: {token}")
check(stream.keys.delete(key.id, account_id=account_id) == "Revoked", "key revoked")

# Outputs of the live input.
outputs = live_inputs.outputs
output = outputs.create(live.uid, account_id=account_id, url="rtmp://relay.example.com/live", stream_key="relay")
check(output.enabled and output.stream_key == "relay", f"output: {output}")
check(outputs.update(output.uid, account_id=account_id, live_input_identifier=live.uid, enabled=False).enabled is False, "output disabled")
check([o.uid for o in outputs.list(live.uid, account_id=account_id)] == [output.uid], "outputs listed")
outputs.delete(output.uid, account_id=account_id, live_input_identifier=live.uid)

stream.delete(video.uid, account_id=account_id)
print("sdk: rtmps publish, video edit, storage usage, webhooks, keys, outputs ok")
