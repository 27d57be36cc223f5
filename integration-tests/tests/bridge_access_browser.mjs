// A hostile page against the bridge in headless Chromium (playwright-core); run by
// bridge_access.rs, which then checks through the store that no attack span arrived.
// Exits non-zero with a message on the first failed check.
//
// env: CHROMIUM, EXPECT (JSON: open / keyed / ui base URLs, publicKey, secretKey, the secret
//      prompt, the trace id, and the request bodies of each write attack)
import { chromium } from "playwright-core";
import http from "node:http";

const expect = JSON.parse(process.env.EXPECT);
const fail = (msg) => { console.error("FAILED: " + msg); process.exit(1); };
const check = (cond, msg) => { if (!cond) fail(msg); };
const port = (url) => new URL(url).port;

// The attacker's site: another origin, another loopback port.
const site = http.createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end("<!doctype html><title>elsewhere</title><iframe name=sink></iframe>");
});
await new Promise((resolve) => site.listen(0, "127.0.0.1", resolve));
const siteUrl = `http://127.0.0.1:${site.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-features=HttpsUpgrades",
    // A DNS rebinding attacker's name, resolving to the bridge's loopback address.
    "--host-resolver-rules=MAP evil.example 127.0.0.1"],
});

try {
  // ---- a page of another origin: reading traces ----
  const attacker = await (await browser.newContext()).newPage();
  await attacker.goto(siteUrl);
  for (const target of [expect.open, expect.keyed, expect.ui]) {
    const reads = await attacker.evaluate(async ({ target, trace }) => {
      const out = {};
      for (const path of ["/api/traces", "/api/traces/" + trace, "/api/sessions"]) {
        try {
          const r = await fetch(target + path);
          out[path] = "read " + r.status + ": " + (await r.text());
        } catch (e) {
          out[path] = "blocked: " + e;
        }
      }
      // no-cors: the answer is opaque, nothing of it readable.
      const opaque = await fetch(target + "/api/traces", { mode: "no-cors" });
      out.opaque = opaque.type + " " + (await opaque.text()).length;
      return out;
    }, { target, trace: expect.trace });
    for (const [what, result] of Object.entries(reads)) {
      check(!result.includes(expect.secret), `${target}${what}: a page elsewhere read the prompt`);
      if (what !== "opaque") check(result.startsWith("blocked"), `${target}${what}: ${result}`);
    }
    check(reads.opaque === "opaque 0", `${target}: no-cors answer ${reads.opaque}`);
  }

  // ---- a page of another origin: writing spans (simple requests need no preflight) ----
  const writes = await attacker.evaluate(async ({ target, bodies }) => {
    const out = {};
    const plain = { "Content-Type": "text/plain;charset=application/json" };
    await fetch(target + "/v1/traces", { method: "POST", mode: "no-cors", headers: plain, body: bodies.fetch });
    await fetch(target + "/api/public/ingestion", { method: "POST", mode: "no-cors", headers: plain, body: bodies.ingestion });
    // A CORS request with a JSON type needs a preflight, which must not succeed.
    try {
      const r = await fetch(target + "/v1/traces", { method: "POST", headers: { "Content-Type": "application/json" }, body: bodies.cors });
      out.cors = "sent " + r.status;
    } catch (e) {
      out.cors = "blocked";
    }
    // A form with enctype text/plain: `name=value` makes the JSON body.
    const body = bodies.form;
    const form = document.createElement("form");
    form.method = "POST";
    form.action = target + "/v1/traces";
    form.enctype = "text/plain";
    form.target = "sink";
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = body.slice(0, -1) + ',"pad":"';
    input.value = '"}';
    form.appendChild(input);
    document.body.appendChild(form);
    const sink = document.querySelector("iframe[name=sink]");
    await new Promise((resolve) => { sink.onload = resolve; form.submit(); });
    out.form = "submitted";
    return out;
  }, { target: expect.open, bodies: expect.bodies });
  check(writes.cors === "blocked", "the CORS write was sent: " + writes.cors);

  // ---- DNS rebinding: the attacker's name now resolves to 127.0.0.1 ----
  const rebinding = await (await browser.newContext()).newPage();
  for (const target of [expect.open, expect.ui]) {
    const evil = `http://evil.example:${port(target)}`;
    const response = await rebinding.goto(evil + "/");
    check(response.status() === 421, `${evil}/ answered ${response.status()}`);
    const read = await rebinding.evaluate(async (trace) => {
      const r = await fetch("/api/traces/" + trace);
      return r.status + " " + (await r.text());
    }, expect.trace);
    check(read.startsWith("421 "), `${evil} API: ${read.slice(0, 200)}`);
    check(!read.includes(expect.secret), `${evil}: the rebinding page read the prompt`);
  }
  const evilOpen = `http://evil.example:${port(expect.open)}`;
  await rebinding.goto(evilOpen + "/");
  const written = await rebinding.evaluate(async (body) => {
    const r = await fetch("/v1/traces", { method: "POST", headers: { "Content-Type": "application/json" }, body });
    return r.status;
  }, expect.bodies.rebinding);
  check(written === 421, "the rebinding page's same-origin POST got " + written);

  // ---- the viewer itself still works on 127.0.0.1 ----
  const row = `#traces tbody tr[data-id="${expect.trace}"]`;
  for (const base of [expect.open, expect.ui]) {
    const viewer = await (await browser.newContext()).newPage();
    const errors = [];
    viewer.on("pageerror", (e) => errors.push(String(e)));
    await viewer.goto(base + "/#/traces");
    await viewer.waitForSelector(row);
    check(errors.length === 0, `${base}: page errors ${errors.join("; ")}`);
  }
  // With keys: nothing without them; the browser's Basic auth opens the viewer.
  // (A headless browser has no one to ask: the challenge ends the navigation.)
  const anonymous = await (await browser.newContext()).newPage();
  const denied = await anonymous.goto(expect.keyed + "/#/traces").then(
    (r) => "status " + r.status(), (e) => String(e));
  check(denied === "status 401" || denied.includes("ERR_INVALID_AUTH_CREDENTIALS"),
    "keyed viewer without credentials: " + denied);
  const signedIn = await (await browser.newContext({
    httpCredentials: { username: expect.publicKey, password: expect.secretKey },
  })).newPage();
  await signedIn.goto(expect.keyed + "/#/traces");
  await signedIn.waitForSelector(row);
  const api = await signedIn.evaluate(async (trace) => {
    const r = await fetch("/api/traces/" + trace);
    return r.status + " " + (await r.text());
  }, expect.trace);
  check(api.startsWith("200 ") && api.includes(expect.secret), "signed-in API: " + api.slice(0, 200));

  console.log("access checks passed");
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await browser.close();
  site.close();
}
