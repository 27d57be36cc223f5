// Drives the local trace viewer in headless Chromium (playwright-core); run by
// viewer_browser.rs. Exits non-zero with a message on the first failed check.
//
// env: BASE_URL, CHROMIUM, USER_DATA_DIR, SHOT_DIR, EXPECT (JSON written by the Rust test),
//      IMPORT_CMD (JSON array: the command that imports one more trace while the page is open)
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";

const base = process.env.BASE_URL;
const expect = JSON.parse(process.env.EXPECT);
const fail = (msg) => { console.error("FAILED: " + msg); process.exit(1); };
const check = (cond, msg) => { if (!cond) fail(msg); };

const context = await chromium.launchPersistentContext(process.env.USER_DATA_DIR, {
  executablePath: process.env.CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 800 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = context.pages()[0] || await context.newPage();
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("dialog", (d) => { errors.push("dialog opened: " + d.message()); d.dismiss(); });
// Nothing but the viewer itself may be fetched (no CDN).
page.on("request", (r) => { if (!r.url().startsWith(base)) errors.push("external request " + r.url()); });

try {
  // ---- traces table ----
  await page.goto(base + "/#/traces");
  await page.waitForSelector("#traces tbody tr[data-id]");
  const allIds = await page.$$eval("#traces tbody tr[data-id]", (rows) => rows.map((r) => r.dataset.id));
  check(allIds.length === expect.traceCount, `table shows ${allIds.length} traces, want ${expect.traceCount}`);
  await page.screenshot({ path: process.env.SHOT_DIR + "/viewer-traces.png" });

  // Filter by user through the form (keyboard: "/" focuses the first filter).
  await page.keyboard.press("/");
  check(await page.evaluate(() => document.activeElement && document.activeElement.name === "name"), "'/' focuses the filter form");
  await page.fill("input[name=user]", expect.user);
  await page.press("input[name=user]", "Enter");
  await page.waitForFunction((n) => document.querySelectorAll("#traces tbody tr[data-id]").length === n, expect.userTraceIds.length);
  const userIds = await page.$$eval("#traces tbody tr[data-id]", (rows) => rows.map((r) => r.dataset.id).sort());
  check(JSON.stringify(userIds) === JSON.stringify([...expect.userTraceIds].sort()), "user filter: " + userIds);

  // Level filter and sorting by cost.
  await page.goto(base + "/#/traces?level=ERROR");
  await page.waitForFunction((n) => document.querySelectorAll("#traces tbody tr[data-id]").length === n, expect.errorTraceIds.length);
  await page.goto(base + "/#/traces?sort=cost&order=desc");
  await page.waitForFunction((id) => { const r = document.querySelector("#traces tbody tr[data-id]"); return r && r.dataset.id === id; }, expect.mostExpensive);

  // Keyboard: focus the first row, Enter opens the trace page.
  await page.goto(base + "/#/traces");
  await page.waitForSelector("#traces tbody tr[data-id]");
  await page.focus("#traces tbody tr[data-id]");
  const firstId = await page.$eval("#traces tbody tr[data-id]", (r) => r.dataset.id);
  await page.keyboard.press("Enter");
  await page.waitForFunction((id) => location.hash === "#/trace/" + encodeURIComponent(id), firstId);
  await page.keyboard.press("Escape");
  await page.waitForSelector("#traces tbody tr[data-id]");

  // ---- trace page: tree, timeline, a generation's messages ----
  await page.goto(base + "/#/trace/" + encodeURIComponent(expect.chatTrace));
  await page.waitForSelector("#waterfall .wf-row[data-obs]");
  const rows = await page.$$eval("#waterfall .wf-row[data-obs]", (rs) => rs.filter((r) => r.dataset.obs).map((r) => ({
    id: r.dataset.obs, level: +r.getAttribute("aria-level"),
    bar: (() => { const b = r.querySelector(".wf-bar"); const s = b && getComputedStyle(b); return s ? parseFloat(s.width) : 0; })(),
  })));
  check(rows.length === expect.chatObservations.length, `tree shows ${rows.length} observations, want ${expect.chatObservations.length}`);
  for (const want of expect.chatObservations) {
    const got = rows.find((r) => r.id === want.id);
    check(got, "tree lacks " + want.id);
    check(got.level === want.depth + 1, `${want.id} at tree level ${got.level}, want ${want.depth + 1}`);
    check(got.bar > 0, `${want.id} has no timeline bar`);
  }
  // The tree and the timeline sit side by side with the detail panel.
  const wf = await page.$eval("#waterfall", (e) => e.getBoundingClientRect().toJSON());
  const panel = await page.$eval("#obs-panel", (e) => e.getBoundingClientRect().toJSON());
  check(panel.left >= wf.right - 1 && wf.width > 400, "waterfall and panel side by side at 1280x800");
  // The generation is selected first: its messages render as chat.
  await page.click(`#waterfall .wf-row[data-obs="${expect.generation}"]`);
  await page.waitForSelector("#obs-panel .msg");
  const roles = await page.$$eval("#obs-panel .msg .role", (es) => es.map((e) => e.textContent.split(" ")[0]));
  for (const r of ["system", "user", "assistant"]) check(roles.includes(r), "messages lack role " + r + ": " + roles);
  const panelText = await page.$eval("#obs-panel", (e) => e.textContent);
  check(panelText.includes(expect.toolName), "tool call name shown");
  check(panelText.includes(expect.model), "model shown");
  check(panelText.includes(expect.scriptPrompt), "the <script> prompt is shown as text");
  check(await page.evaluate(() => window.__xss === undefined), "user content ran as script");
  check(!(await page.$eval("#obs-panel", (e) => [...e.childNodes].some((n) => n.nodeType === 3))), "stray text in the panel");
  check((await page.$$("#obs-panel script, #obs-panel img")).length === 0, "user markup became elements");
  // Keyboard in the tree: ArrowDown moves focus, Enter selects.
  await page.focus(`#waterfall .wf-row[data-obs=""]`);
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#waterfall .wf-row.selected");
  await page.click(`#waterfall .wf-row[data-obs="${expect.generation}"]`);
  await page.waitForSelector("#obs-panel .msg");
  await page.screenshot({ path: process.env.SHOT_DIR + "/viewer-trace.png" });

  // ---- sessions and users ----
  await page.goto(base + "/#/sessions");
  await page.waitForSelector("table[aria-label=Sessions] tbody tr");
  await page.goto(base + "/#/users");
  await page.waitForSelector("table[aria-label=Users] tbody tr");

  // ---- live: a trace imported while the page is open appears without reload ----
  await page.goto(base + "/#/traces");
  await page.waitForSelector("#traces tbody tr[data-id]");
  const cmd = JSON.parse(process.env.IMPORT_CMD);
  execFileSync(cmd[0], cmd.slice(1), { stdio: "ignore" });
  await page.waitForSelector(`#traces tbody tr[data-id="${expect.liveTrace}"]`, { timeout: 15000 });

  check(errors.length === 0, "page errors: " + errors.join("; "));
  console.log("viewer checks passed");
} catch (e) {
  fail(e.stack || String(e));
} finally {
  await context.close();
}
