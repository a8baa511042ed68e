"""Drives controld's live input API with the official Cloudflare Python SDK.

Run by tests/tests/controld_sdk.rs with CF_BASE_URL (…/client/v4), CF_ACCOUNT_ID and
CF_API_TOKEN pointing at a running controld. Exits non-zero on the first failed check.
"""

import os
import re
import sys

import cloudflare
from cloudflare import Cloudflare

base_url = os.environ["CF_BASE_URL"]
account_id = os.environ["CF_ACCOUNT_ID"]
client = Cloudflare(api_token=os.environ["CF_API_TOKEN"], base_url=base_url, max_retries=0)
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
