// Client of controld's Cloudflare-v4-shaped Stream API. Every failure becomes an ApiError that
// carries the API's own `errors[].message` text, so the page can show what the server said.

const SESSION_KEY = "cfstream.session";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The session ({accountId, token}) lives in sessionStorage: gone when the tab closes, never in a URL.
export function loadSession() {
  const raw = sessionStorage.getItem(SESSION_KEY);
  return raw ? JSON.parse(raw) : null;
}

export function saveSession(session) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession() {
  sessionStorage.removeItem(SESSION_KEY);
}

async function request(session, method, path, body) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const base = `/client/v4/accounts/${encodeURIComponent(session.accountId)}/stream`;
  let response;
  try {
    response = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, `controld is not reachable (${err.message})`);
  }
  const envelope = await response.json().catch(() => null);
  if (!envelope || typeof envelope !== "object") {
    throw new ApiError(response.status, `HTTP ${response.status} ${response.statusText} without an API response`);
  }
  if (!response.ok || envelope.success === false) {
    const messages = (envelope.errors || []).map((e) => (e.code ? `${e.message} (code ${e.code})` : e.message));
    throw new ApiError(response.status, messages.join("; ") || `HTTP ${response.status} ${response.statusText}`);
  }
  return envelope.result;
}

// An owner preview token lives 1 h (the server's cap); a new one is minted before that.
const PREVIEW_TOKEN_RENEW_MS = 50 * 60 * 1000;

// An owner preview token for `uid`, as an async function: minted with the session's API token,
// it plays whatever the input's requireSignedURLs and allowedOrigins say, so the account owner
// always sees the stream while other sites stay refused. It is minted again before it expires.
function ownerPreviewToken(session, uid) {
  let token = null;
  let renewAt = 0;
  return async () => {
    if (!token || Date.now() >= renewAt) {
      token = (await request(session, "POST", `/${encodeURIComponent(uid)}/token`, { ownerPreview: true })).token;
      renewAt = Date.now() + PREVIEW_TOKEN_RENEW_MS;
    }
    return token;
  };
}

// `{liveViewers}` of an input (null when its recording.hideLiveViewerCount hides it).
async function liveViewers(token) {
  const response = await fetch(`/${encodeURIComponent(token)}/views`, { cache: "no-store" });
  const body = await response.json().catch(() => null);
  if (!response.ok || !body) {
    const message = body && body.errors && body.errors.length ? body.errors[0].message : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body.liveViewers;
}

// A viewer id (`vid`, 12 URL-safe characters) for this page: its probe of the manifest and its
// player then count as one viewer in the input's live viewer count.
function newViewerId() {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_");
}

export function api(session) {
  const viewerId = newViewerId();
  const input = (uid) => `/live_inputs/${encodeURIComponent(uid)}`;
  // One token per uid shown on the page, shared by its preview and its viewer count.
  const tokens = new Map();
  const previewToken = (uid) => {
    if (!tokens.has(uid)) tokens.set(uid, ownerPreviewToken(session, uid));
    return tokens.get(uid)();
  };
  return {
    listInputs: () => request(session, "GET", "/live_inputs"),
    getInput: (uid) => request(session, "GET", input(uid)),
    createInput: (body) => request(session, "POST", "/live_inputs", body),
    deleteInput: (uid) => request(session, "DELETE", input(uid)),
    setEnabled: (uid, enabled) => request(session, "POST", `${input(uid)}/${enabled ? "enable" : "disable"}`),
    rotateKeys: (uid) => request(session, "POST", `${input(uid)}/rotate_keys`),
    listRecordings: (uid) => request(session, "GET", `?live_input_id=${encodeURIComponent(uid)}`),
    // LL-HLS: the preview is for checking the feed, so it plays as close to live as it can.
    previewManifestUrl: (uid) => async () => `/${encodeURIComponent(await previewToken(uid))}/manifest/video.m3u8?protocol=llhls&vid=${viewerId}`,
    liveViewers: async (uid) => liveViewers(await previewToken(uid)),
    listOutputs: (uid) => request(session, "GET", `${input(uid)}/outputs`),
    addOutput: (uid, body) => request(session, "POST", `${input(uid)}/outputs`, body),
    setOutputEnabled: (uid, outputUid, enabled) =>
      request(session, "PUT", `${input(uid)}/outputs/${encodeURIComponent(outputUid)}`, { enabled }),
    deleteOutput: (uid, outputUid) => request(session, "DELETE", `${input(uid)}/outputs/${encodeURIComponent(outputUid)}`),
  };
}
