// The trial form: check a trial request file, send it to the offline service, verify the signed
// response with WebCrypto Ed25519 and only then offer it for download.
//
// Every file and every answer is treated as hostile: sizes are bounded before or while anything is
// read, text reaches the page only through textContent, and nothing is offered that did not verify.
// A classic script, not a module: Chromium refuses module scripts on pages opened from disk.
(function () {
  "use strict";

  const MAX_FILE_BYTES = 16384; // docs/FORMAT.md §1: a request or response file, as read
  const MAX_ANSWER_BYTES = 65536; // the service's JSON answers are far smaller
  const TIMEOUT_MS = 30000;
  const TRIAL_PATH = "/v1/trial-activations/offline-activate";
  const JWKS_PATH = "/.well-known/jwks.json";
  const REQUEST_TYP = "offline-request+jws";
  const RESPONSE_TYP = "offline-response+jws";
  const ALGS = ["EdDSA", "Ed25519"];
  const MAX_TIME = 253402300799; // the end of year 9999, the format's largest time
  const ID = /^[A-Za-z0-9_.:-]{1,64}$/;
  const FINGERPRINT = /^[A-Za-z0-9+/=_.:-]{1,128}$/;
  const NONCE = /^[A-Za-z0-9_-]{22,86}$/;
  const B64_32 = /^[A-Za-z0-9_-]{43}$/; // 32 bytes: a public key's x, a thumbprint
  const CODE = /^[A-Z][A-Z_]{0,63}$/;
  const ARMOR = /^-----BEGIN ([A-Z0-9 ]{1,40})-----\r?\n([\s\S]*?)\r?\n-----END \1-----$/;
  const COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
  const ASCII_SPACE = /^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g;
  const TRIAL_MEMBERS = [
    "v", "kind", "productId", "activationId", "fingerprint", "machineKeyThumbprint",
    "trialEndsAt", "iat", "applyBefore", "requestNonce",
  ];

  // A failure to show the person, in plain words. ``parts``: the same words as text and links
  // ({text, href}), for a message that points somewhere; built as DOM nodes, never as markup.
  class Problem extends Error {
    constructor(message, parts) {
      super(message);
      this.parts = parts || [message];
    }
  }

  // A Problem whose ``words`` become a link to ``href`` when there is one, else stay plain words.
  function problemWithLink(before, words, href, after) {
    const parts = href ? [before, { text: words, href }, after] : [before + words + after];
    return new Problem(before + words + after, parts);
  }

  const $ = (id) => document.getElementById(id);
  const form = $("trial-form");
  const productSelect = $("product");
  const fileInput = $("request-file");
  const textInput = $("request-text");
  const dropZone = $("drop-zone");
  const submit = $("submit");
  const statusLine = $("status");
  const problemBox = $("problem");
  const result = $("result");
  const downloadButton = $("download");

  let config = null;
  let offered = null; // {text, name} of the verified response on offer
  let blockedByCsp = null; // the URL the page's CSP refused to connect to, if any

  // -- showing things -------------------------------------------------------------------------

  function say(text) {
    statusLine.textContent = text;
  }

  // ``what``: a Problem (its text and links) or plain text.
  function showProblem(what) {
    const parts = what instanceof Problem ? what.parts : [String(what)];
    problemBox.replaceChildren(
      ...parts.map((part) => {
        if (typeof part === "string") return document.createTextNode(part);
        const link = document.createElement("a");
        link.href = part.href;
        link.rel = "noreferrer";
        link.textContent = part.text;
        return link;
      }),
    );
    problemBox.hidden = false;
    say("");
  }

  function clearOutcome() {
    problemBox.hidden = true;
    problemBox.textContent = "";
    result.hidden = true;
    result.classList.remove("used");
    downloadButton.hidden = true;
    $("download-hint").hidden = true;
    offered = null;
  }

  // An untrusted string, cut to a length that cannot flood the page.
  function shown(value, limit) {
    const text = String(value);
    return text.length > limit ? text.slice(0, limit) + "…" : text;
  }

  function isoTime(seconds) {
    return new Date(seconds * 1000).toISOString().replace(".000Z", "Z");
  }

  // Times as the person reads them: in the browser's time zone, with the zone's short name and its
  // IANA name ("Friday, January 29, 2027 at 5:00 PM GMT+9 (Asia/Tokyo)"). The machine-readable UTC
  // time stays in each <time>'s datetime attribute.
  const LOCAL_TIME = new Intl.DateTimeFormat(undefined, {
    weekday: "long",
    year: "numeric",
    month: "long",
    day: "numeric",
    hour: "numeric",
    minute: "2-digit",
    timeZoneName: "short",
  });
  const ZONE = LOCAL_TIME.resolvedOptions().timeZone;

  function localTime(seconds) {
    const text = LOCAL_TIME.format(new Date(seconds * 1000));
    return ZONE ? `${text} (${ZONE})` : text;
  }

  function setTime(element, seconds) {
    element.dateTime = isoTime(seconds);
    element.textContent = localTime(seconds);
  }

  function duration(seconds) {
    if (seconds < 90) return `${seconds} seconds`;
    if (seconds < 5400) return `${Math.ceil(seconds / 60)} minutes`;
    return `${Math.ceil(seconds / 3600)} hours`;
  }

  // -- strict decoding (docs/FORMAT.md §1) ------------------------------------------------------

  const B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

  function b64urlEncode(bytes) {
    let out = "";
    for (let i = 0; i < bytes.length; i += 3) {
      const n = (bytes[i] << 16) | ((bytes[i + 1] || 0) << 8) | (bytes[i + 2] || 0);
      const chars = [18, 12, 6, 0].map((shift) => B64_ALPHABET[(n >> shift) & 63]);
      out += chars.slice(0, Math.min(4, bytes.length - i + 1)).join("");
    }
    return out;
  }

  // Canonical base64url only: no padding, no other characters, and the unused bits of the last
  // character zero (re-encoding gives the same text), as the service and the client require.
  function b64urlDecode(text) {
    if (typeof text !== "string" || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
      throw new Error("not base64url");
    }
    const bytes = new Uint8Array(Math.floor((text.length * 3) / 4));
    let bits = 0;
    let value = 0;
    let at = 0;
    for (const ch of text) {
      value = (value << 6) | B64_ALPHABET.indexOf(ch);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes[at++] = (value >> bits) & 255;
      }
    }
    if (b64urlEncode(bytes) !== text) throw new Error("not canonical base64url");
    return bytes;
  }

  function utf8(bytes) {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  }

  function jsonObject(bytes) {
    const text = utf8(bytes);
    if (text.charCodeAt(0) === 0xfeff) throw new Error("byte-order mark");
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
    return value;
  }

  // The compact token of a file's text: surrounding whitespace and armor lines removed (§1.1).
  function unarmor(text) {
    const body = text.replace(ASCII_SPACE, "");
    const match = ARMOR.exec(body);
    return match ? match[2].replace(/[ \t\n\v\f\r]+/g, "") : body;
  }

  // {header, payload, signingInput, signature} of a compact JWS, or Error.
  function splitJws(text) {
    const token = unarmor(text);
    if (!COMPACT.test(token)) throw new Error("not a compact JWS");
    const [h, p, s] = token.split(".");
    return {
      header: jsonObject(b64urlDecode(h)),
      payload: jsonObject(b64urlDecode(p)),
      signingInput: new TextEncoder().encode(`${h}.${p}`),
      signature: b64urlDecode(s),
    };
  }

  const isTime = (value) => Number.isInteger(value) && value >= 0 && value <= MAX_TIME;
  const has = (object, name) => Object.prototype.hasOwnProperty.call(object, name);

  // -- configuration ----------------------------------------------------------------------------

  function readConfig(raw) {
    if (raw === null || typeof raw !== "object") {
      throw new Problem("config.js is missing or does not set window.TRIAL_FORM_CONFIG.");
    }
    let api;
    try {
      api = new URL(String(raw.apiBaseUrl));
    } catch (_) {
      throw new Problem("apiBaseUrl in config.js is not a URL.");
    }
    if (!["https:", "http:"].includes(api.protocol) || api.username || api.password || api.search || api.hash) {
      throw new Problem("apiBaseUrl in config.js must be an http(s) URL without user, query or fragment.");
    }
    const portal = readPortalUrl(raw.portalUrl);
    if (!Array.isArray(raw.products) || raw.products.length === 0 || raw.products.length > 200) {
      throw new Problem("products in config.js must list between 1 and 200 products.");
    }
    const products = raw.products.map((entry, index) => {
      const where = `product ${index + 1} in config.js`;
      if (entry === null || typeof entry !== "object") throw new Problem(`${where} is not an object.`);
      if (typeof entry.name !== "string" || !entry.name.trim() || entry.name.length > 200) {
        throw new Problem(`${where} needs a name of 1 to 200 characters.`);
      }
      if (typeof entry.id !== "string" || !ID.test(entry.id)) {
        throw new Problem(`${where} needs an id (a product id such as prod_…).`);
      }
      const pinned = entry.jwks === undefined ? null : pinnedKeys(entry.jwks, entry.id);
      if (pinned !== null && pinned.size === 0) {
        throw new Problem(`${where}: its jwks holds no Ed25519 signing key for ${entry.id}.`);
      }
      return { name: entry.name.trim(), id: entry.id, pinned };
    });
    if (new Set(products.map((p) => p.id)).size !== products.length) {
      throw new Problem("products in config.js lists a product id twice.");
    }
    return { api: api.href.replace(/\/+$/, ""), origin: api.origin, products, portal };
  }

  // The customer portal's address, optional: the page links to it where it names the portal.
  function readPortalUrl(value) {
    if (value === undefined || value === null || value === "") return null;
    let portal;
    try {
      portal = new URL(String(value));
    } catch (_) {
      throw new Problem("portalUrl in config.js is not a URL.");
    }
    if (!["https:", "http:"].includes(portal.protocol) || portal.username || portal.password) {
      throw new Problem("portalUrl in config.js must be an http(s) URL without user or password.");
    }
    return portal.href;
  }

  // kid -> raw public key of a JWKS's keys that may sign for productId, as the client SDK picks
  // them (offline_service/client/pinning.py): OKP/Ed25519, use sig, an Ed25519 alg, this product.
  function pinnedKeys(jwks, productId) {
    if (jwks === null || typeof jwks !== "object" || !Array.isArray(jwks.keys)) {
      throw new Problem("The public keys are not a JWKS (an object with a keys array).");
    }
    const keys = new Map();
    for (const jwk of jwks.keys.slice(0, 100)) {
      if (jwk === null || typeof jwk !== "object") continue;
      if (["d", "p", "q", "dp", "dq", "qi", "k"].some((name) => has(jwk, name))) {
        throw new Problem("The public keys include private key material: use the public JWKS.");
      }
      if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519") continue;
      if (has(jwk, "product") && jwk.product !== productId) continue;
      if ((jwk.use ?? "sig") !== "sig" || !ALGS.includes(jwk.alg ?? "EdDSA")) continue;
      if (typeof jwk.kid !== "string" || !jwk.kid) continue;
      let raw;
      try {
        raw = b64urlDecode(jwk.x);
      } catch (_) {
        continue;
      }
      if (raw.length === 32) keys.set(jwk.kid, raw);
    }
    return keys;
  }

  // The page may connect only to the configured API: a second policy narrows the meta tag's
  // connect-src (policies intersect), so config.js alone decides, and decides exactly.
  function narrowConnectSrc(origin) {
    const meta = document.createElement("meta");
    meta.httpEquiv = "Content-Security-Policy";
    meta.content = `connect-src ${origin}`;
    document.head.append(meta);
  }

  // -- the request file -------------------------------------------------------------------------

  async function requestText() {
    const file = fileInput.files && fileInput.files[0];
    if (file) {
      if (file.size > MAX_FILE_BYTES) {
        throw new Problem(
          `“${shown(file.name, 80)}” is too large to be a trial request (at most 16 KiB). ` +
            "Choose the file the app wrote.",
        );
      }
      try {
        return utf8(new Uint8Array(await file.arrayBuffer()));
      } catch (_) {
        throw new Problem(`“${shown(file.name, 80)}” is not a trial request: it is not a text file.`);
      }
    }
    const pasted = textInput.value;
    if (new TextEncoder().encode(pasted).length > MAX_FILE_BYTES) {
      throw new Problem("The pasted text is too large to be a trial request (at most 16 KiB).");
    }
    if (!pasted.trim()) {
      throw new Problem("Choose the trial request file, drop it on the page, or paste its text.");
    }
    return pasted;
  }

  const NOT_A_REQUEST = "This is not a trial request file";

  // What the form needs of a trial request, checked as far as a page can without the service:
  // the shape, the header, the kind and the product. The service checks everything again.
  function checkRequest(text, product) {
    let jws;
    try {
      jws = splitJws(text);
    } catch (_) {
      throw new Problem(
        `${NOT_A_REQUEST}: it is not in the format the app writes. It may have been damaged on the ` +
          "way; make a new trial request on the machine and carry it as a file.",
      );
    }
    const { header, payload } = jws;
    if (header.typ === RESPONSE_TYP) {
      throw new Problem(
        "This is a response file, not a request. Take it to the offline machine and open it in the app.",
      );
    }
    if (header.typ !== REQUEST_TYP || !ALGS.includes(header.alg)) {
      throw new Problem(`${NOT_A_REQUEST}: it is some other signed file.`);
    }
    const jwk = header.jwk;
    if (jwk === null || typeof jwk !== "object" || jwk.kty !== "OKP" || jwk.crv !== "Ed25519") {
      throw new Problem(`${NOT_A_REQUEST}: it is damaged (no valid machine key).`);
    }
    if (payload.kind === "activation") {
      throw problemWithLink(
        "This is an activation request (it is for a license key), not a trial request. Activate it on the ",
        "customer portal",
        config.portal,
        ", or make a trial request in the app.",
      );
    }
    if (payload.kind === "deactivation") {
      throw new Problem("This is a deactivation request, not a trial request.");
    }
    if (payload.kind !== "trial" || payload.v !== 1) {
      throw new Problem(`${NOT_A_REQUEST} of a version this page knows.`);
    }
    if (payload.productId !== product.id) {
      const other = config.products.find((p) => p.id === payload.productId);
      if (other) {
        throw new Problem(
          `This trial request is for ${other.name}, not ${product.name}. ` +
            `Choose ${other.name} above, or make a trial request in ${product.name}.`,
        );
      }
      const id = typeof payload.productId === "string" && ID.test(payload.productId) ? payload.productId : "?";
      throw new Problem(
        `This trial request is for a product this page does not offer (product id ${id}), ` +
          `not ${product.name}.`,
      );
    }
    if (typeof payload.fingerprint !== "string" || !FINGERPRINT.test(payload.fingerprint) ||
        typeof payload.nonce !== "string" || !NONCE.test(payload.nonce) ||
        typeof jwk.x !== "string" || !B64_32.test(jwk.x)) {
      throw new Problem(`${NOT_A_REQUEST}: it is damaged (its machine details are not valid).`);
    }
    const hostname = typeof payload.hostname === "string" ? payload.hostname : "";
    return { fingerprint: payload.fingerprint, nonce: payload.nonce, hostname, jwkX: jwk.x };
  }

  // -- talking to the service -------------------------------------------------------------------

  async function readLimited(response) {
    if (!response.body) return "";
    const reader = response.body.getReader();
    const chunks = [];
    let size = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_ANSWER_BYTES) {
        await reader.cancel();
        throw new Problem("The trial service sent an answer far larger than any it should; it was not used.");
      }
      chunks.push(value);
    }
    const all = new Uint8Array(size);
    let at = 0;
    for (const chunk of chunks) {
      all.set(chunk, at);
      at += chunk.byteLength;
    }
    return new TextDecoder().decode(all);
  }

  // fetch with a time limit; network failures (and CORS refusals, which look the same to a page)
  // become plain words.
  async function call(url, init) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    blockedByCsp = null;
    try {
      const response = await fetch(url, {
        ...init,
        signal: abort.signal,
        mode: "cors",
        credentials: "omit",
        cache: "no-store",
        redirect: "error",
        referrerPolicy: "no-referrer",
      });
      return { response, text: await readLimited(response) };
    } catch (error) {
      if (error instanceof Problem) throw error;
      // A CSP refusal is reported by an event that may come after the rejection: let it arrive.
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (abort.signal.aborted) {
        throw new Problem("The trial service did not answer within 30 seconds. Try again later.");
      }
      if (blockedByCsp !== null) {
        throw new Problem(
          `This page may not connect to ${config.origin}: its Content-Security-Policy does not allow it. ` +
            "The vendor must allow that origin in index.html (see README.md).",
        );
      }
      throw new Problem(
        `The trial service at ${config.origin} could not be reached. Check the network connection and ` +
          "try again; if it keeps failing, the service may be down or may not accept this page.",
      );
    } finally {
      clearTimeout(timer);
    }
  }

  function parseJson(text) {
    try {
      return JSON.parse(text);
    } catch (_) {
      return null;
    }
  }

  // Plain words for each refusal the trial endpoint can answer with (docs/ERRORS.md).
  function refusal(status, body, retryAfter) {
    const code = body && typeof body.code === "string" && CODE.test(body.code) ? body.code : null;
    const wait = Number.isInteger(retryAfter) && retryAfter > 0 ? duration(retryAfter) : "a while";
    const words = {
      TRIAL_NOT_ALLOWED: "Trials are not offered for this product. Buy a license, or ask the vendor.",
      RATE_LIMITED: `Too many requests from your network. Try again in ${wait}.`,
      TRIAL_DAILY_LIMIT: "Your network has had as many new trials today as the service gives to one " +
        `address. Try again in ${wait}.`,
      PRODUCT_NOT_FOUND: "The trial service does not know this product. This page's list of products " +
        "is out of date: tell the vendor.",
      PRODUCT_MISMATCH: "The request file is for another product than the one chosen.",
      MALFORMED_REQUEST: "The service could not read the request file: it is not a valid trial request, " +
        "or it was damaged on the way. Make a new trial request on the machine and carry it as a file.",
      BAD_SIGNATURE: "The request file's signature is not valid: it was changed after the app wrote it. " +
        "Make a new trial request on the machine.",
      UNSUPPORTED_VERSION: "The request file is of a version the service does not support. Update the " +
        "app, or ask the vendor.",
      REQUEST_TOO_LARGE: "The request file is too large. Choose the file the app wrote.",
      REQUEST_EXPIRED: "The request is too old, or the machine's clock is behind. Check the machine's " +
        "clock, make a new trial request and bring it sooner.",
      REQUEST_FROM_FUTURE: "The request is dated in the future: the machine's clock is ahead. Correct " +
        "the clock and make a new trial request.",
      INVALID_ARGUMENT: "The service could not read what this page sent. The page may be out of date: " +
        "tell the vendor.",
    };
    if (code !== null && has(words, code)) return `${words[code]} (${code})`;
    if (status >= 500 || code === null) {
      return `The trial service had a problem of its own (HTTP ${status}${code ? `, ${code}` : ""}). ` +
        "Try again later; tell the vendor if it keeps happening.";
    }
    const message = typeof body.message === "string" ? shown(body.message, 200) : "";
    return `The trial service refused the request${message ? `: ${message}` : ""} (${code}).`;
  }

  async function askForTrial(product, text) {
    // A form body keeps this a CORS "simple" request: no preflight round trip before it.
    const body = new FormData();
    body.append("productId", product.id);
    body.append("offlineRequest", text);
    const { response, text: answer } = await call(config.api + TRIAL_PATH, { method: "POST", body });
    const found = parseJson(answer);
    if (!response.ok) {
      const retry = Number.parseInt(response.headers.get("retry-after") || "", 10);
      throw new Problem(refusal(response.status, found, retry));
    }
    if (found === null || typeof found !== "object" || typeof found.offlineResponse !== "string" ||
        found.offlineResponse.length > MAX_FILE_BYTES || typeof found.existing !== "boolean" ||
        !isTime(found.trialEndsAt)) {
      throw new Problem("The trial service gave an answer this page does not understand; nothing was offered.");
    }
    return found;
  }

  // -- verifying the response (docs/FORMAT.md §5) -----------------------------------------------

  const UNVERIFIED = "The trial response could not be verified, so it is not offered for download";

  async function thumbprint(x) {
    const canonical = `{"crv":"Ed25519","kty":"OKP","x":"${x}"}`;
    return b64urlEncode(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonical))));
  }

  async function publishedKeys(product) {
    if (product.pinned) return product.pinned;
    const url = `${config.api}${JWKS_PATH}?product=${encodeURIComponent(product.id)}`;
    const { response, text } = await call(url, { method: "GET" });
    const jwks = response.ok ? parseJson(text) : null;
    if (jwks === null) {
      throw new Problem(`${UNVERIFIED}: the service's public keys could not be read. Try again.`);
    }
    return pinnedKeys(jwks, product.id);
  }

  async function verifyResponse(answer, request, product) {
    let jws;
    try {
      jws = splitJws(answer.offlineResponse);
    } catch (_) {
      throw new Problem(`${UNVERIFIED}: it is not a valid response file.`);
    }
    const { header, payload } = jws;
    const members = Object.keys(header).sort().join(",");
    if (header.typ !== RESPONSE_TYP || !ALGS.includes(header.alg) || members !== "alg,kid,typ" ||
        typeof header.kid !== "string") {
      throw new Problem(`${UNVERIFIED}: it is not a valid response file.`);
    }
    if (jws.signature.length !== 64) throw new Problem(`${UNVERIFIED}: its signature is not valid.`);
    const keys = await publishedKeys(product);
    const key = keys.get(header.kid);
    if (!key) {
      throw new Problem(`${UNVERIFIED}: it is signed with a key that is not one of ${product.name}'s keys.`);
    }
    if (!window.crypto || !crypto.subtle) {
      throw new Problem(`${UNVERIFIED}: this browser offers no signature checks here. Open the page over https.`);
    }
    let valid;
    try {
      const publicKey = await crypto.subtle.importKey("raw", key, { name: "Ed25519" }, false, ["verify"]);
      valid = await crypto.subtle.verify({ name: "Ed25519" }, publicKey, jws.signature, jws.signingInput);
    } catch (_) {
      throw new Problem(`${UNVERIFIED}: this browser cannot check Ed25519 signatures. Use a current browser.`);
    }
    if (!valid) {
      throw new Problem(
        `${UNVERIFIED}: its signature does not match the service's key. It may have been changed on the ` +
          "way. Try again; if it happens again, tell the vendor.",
      );
    }
    // Signed by the service; now check that it answers this very request.
    const names = Object.keys(payload).sort().join(",");
    const fits =
      names === [...TRIAL_MEMBERS].sort().join(",") &&
      payload.v === 1 &&
      payload.kind === "trial" &&
      payload.productId === product.id &&
      payload.fingerprint === request.fingerprint &&
      payload.requestNonce === request.nonce &&
      typeof payload.activationId === "string" && ID.test(payload.activationId) &&
      typeof payload.machineKeyThumbprint === "string" && B64_32.test(payload.machineKeyThumbprint) &&
      payload.machineKeyThumbprint === (await thumbprint(request.jwkX)) &&
      [payload.trialEndsAt, payload.iat, payload.applyBefore].every(isTime) &&
      payload.trialEndsAt === answer.trialEndsAt;
    if (!fits) {
      throw new Problem(`${UNVERIFIED}: it does not answer this request (another product, machine or request).`);
    }
    return { payload, kid: header.kid, pinned: Boolean(product.pinned) };
  }

  // -- the outcome -------------------------------------------------------------------------------

  // Like the portal's download names (offline_service/web/portal.py download_name).
  function fileNamePart(text, fallback) {
    const cleaned = text.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._-]+|[._-]+$/g, "");
    return cleaned.slice(0, 48).replace(/^[._-]+|[._-]+$/g, "") || fallback;
  }

  function showGrant(answer, verified, request, product) {
    const payload = verified.payload;
    const ended = payload.trialEndsAt * 1000 <= Date.now();
    const machine = request.hostname ? fileNamePart(request.hostname, "machine")
      : fileNamePart(request.fingerprint.slice(0, 16), "machine");
    const name = `${machine}-${fileNamePart(payload.activationId, "trial")}-trial.response`;
    $("result-product").textContent = product.name;
    setTime($("result-ends"), payload.trialEndsAt);
    setTime($("result-apply"), payload.applyBefore);
    $("result-signature").textContent =
      `Verified: Ed25519, key ${shown(verified.kid, 43)} ` +
      (verified.pinned ? "(pinned in this page)" : "(published by the service)");
    $("download-name").textContent = name;
    const heading = $("result-heading");
    const note = $("result-note");
    if (!answer.existing) {
      heading.textContent = "Trial granted";
      note.textContent = `The trial of ${product.name} for this machine ends on ${localTime(payload.trialEndsAt)}.`;
    } else if (!ended) {
      heading.textContent = "Trial already used";
      note.textContent =
        `This machine already had its trial of ${product.name}; a trial is never extended. It ends on ` +
        `${localTime(payload.trialEndsAt)}. Here is its response again.`;
    } else {
      heading.textContent = "Trial already used";
      note.textContent =
        `This machine already had its trial of ${product.name}, and it ended on ` +
        `${localTime(payload.trialEndsAt)}. A trial is never extended: buy a license to go on.`;
    }
    result.classList.toggle("used", answer.existing);
    result.hidden = false;
    // An ended trial's response would only be refused by the app: nothing to carry back.
    if (!ended) {
      offered = { text: answer.offlineResponse.replace(ASCII_SPACE, "") + "\n", name };
      downloadButton.hidden = false;
      $("download-hint").hidden = false;
    }
    say(answer.existing ? "This machine already had its trial." : "Trial granted and verified.");
    heading.focus();
  }

  function download() {
    if (!offered) return;
    const url = URL.createObjectURL(new Blob([offered.text], { type: "application/octet-stream" }));
    const link = document.createElement("a");
    link.href = url;
    link.download = offered.name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    say(`Downloaded ${offered.name}.`);
  }

  // -- the form ----------------------------------------------------------------------------------

  async function onSubmit(event) {
    event.preventDefault();
    clearOutcome();
    const product = config.products.find((p) => p.id === productSelect.value);
    submit.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      if (!product) throw new Problem("Choose the product to try.");
      say("Checking the request file…");
      const text = await requestText();
      const request = checkRequest(text, product);
      say("Asking the trial service…");
      const answer = await askForTrial(product, text);
      say("Verifying the signature of the response…");
      const verified = await verifyResponse(answer, request, product);
      showGrant(answer, verified, request, product);
    } catch (error) {
      if (!(error instanceof Problem)) {
        console.error(error); // a bug of this page: shown in the console for whoever debugs it
        showProblem("Something went wrong on this page; nothing was sent or offered. Reload it and try again.");
      } else {
        showProblem(error);
      }
    } finally {
      submit.disabled = false;
      form.removeAttribute("aria-busy");
    }
  }

  function chooseFiles(files) {
    if (files.length !== 1) {
      clearOutcome();
      showProblem("Drop one file: the trial request the app wrote.");
      return;
    }
    fileInput.files = files;
    textInput.value = "";
    clearOutcome();
    say(`Chosen: ${shown(files[0].name, 80)}`);
  }

  function start() {
    try {
      config = readConfig(window.TRIAL_FORM_CONFIG);
    } catch (error) {
      if (!(error instanceof Problem)) throw error;
      showProblem(`This page is not set up: ${error.message} (For the vendor: see README.md.)`);
      for (const element of form.elements) element.disabled = true;
      return;
    }
    narrowConnectSrc(config.origin);
    document.addEventListener("securitypolicyviolation", (event) => {
      if (event.effectiveDirective === "connect-src") blockedByCsp = event.blockedURI;
    });
    $("service").textContent = config.api;
    if (config.products.length > 1) {
      productSelect.append(new Option("Choose one", "")); // not the label again
    }
    for (const product of config.products) productSelect.append(new Option(product.name, product.id));

    form.addEventListener("submit", onSubmit);
    downloadButton.addEventListener("click", download);
    fileInput.addEventListener("change", () => {
      textInput.value = "";
      clearOutcome();
    });
    textInput.addEventListener("input", () => {
      fileInput.value = "";
      clearOutcome();
    });
    for (const name of ["dragenter", "dragover"]) {
      dropZone.addEventListener(name, (event) => {
        event.preventDefault();
        dropZone.classList.add("dragging");
      });
    }
    dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
    dropZone.addEventListener("drop", (event) => {
      event.preventDefault();
      dropZone.classList.remove("dragging");
      chooseFiles(event.dataTransfer.files);
    });
    // A file dropped anywhere else would make the browser leave the page to open it.
    for (const name of ["dragover", "drop"]) {
      window.addEventListener(name, (event) => event.preventDefault());
    }
  }

  start();
})();
