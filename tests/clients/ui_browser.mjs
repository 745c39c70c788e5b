// Drives the relay's web UI in the system chromium (headless) with playwright-core.
// Run by tests/api/ui.rs: node ui_browser.mjs BASE_URL SCREENSHOT_DIR
// Prints "ok <check>" for each passed check and exits 1 at the first failure. Halfway it prints
// "RESTART <last id>" and waits on stdin for "POSTED <id>": the test restarts the relay and posts
// one message before the page can reconnect, which the page must then show exactly once.
import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

const [base, shots] = process.argv.slice(2);
const channel = "ui-test";
const executablePath = process.env.RELAY_CHROMIUM || "/usr/bin/chromium";
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();

function check(name, condition, detail) {
  if (!condition) throw new Error(`${name}${detail === undefined ? "" : `: ${JSON.stringify(detail)}`}`);
  console.log(`ok ${name}`);
}

async function post(text, sender = "claude", target = channel) {
  const reply = await fetch(`${base}/api/messages`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ target, sender, text }),
  });
  const body = await reply.json();
  if (reply.status !== 201) throw new Error(`post failed: ${reply.status} ${JSON.stringify(body)}`);
  return body.posted;
}

// Each payload would set window.__xss or open a dialog if it ran.
const XSS = [
  "<script>window.__xss = 'script'</script>",
  "<img src=x onerror=\"window.__xss='img'\">",
  "<svg onload=\"window.__xss='svg'\"></svg>",
  "[click me](javascript:window.__xss='link')",
  "<a href=\"javascript:alert(1)\">raw link</a>",
  "<iframe src=\"javascript:alert(1)\"></iframe>",
  "```html\n<script>window.__xss='fence'</script>\n```",
];

const PACKET = [
  "## Review packet: writer flush",
  "",
  "Summary: group commit now **flushes once per batch**; see the diff.",
  "",
  "```rust",
  "pub fn flush(&self) -> Result<usize, Error> {",
  "    let n = self.queue.len(); // pending appends",
  "    self.db.flush()?;",
  "    Ok(n)",
  "}",
  "```",
  "",
  "```diff",
  "--- a/src/store/writer.rs",
  "+++ b/src/store/writer.rs",
  "@@ -10,3 +10,3 @@",
  " let batch = take(&mut queue);",
  "-db.flush()?;",
  "+db.flush_async().await?;",
  "```",
  "",
  "Questions: is `Vec<String>` the right type?",
  "",
  XSS.join("\n\n"),
].join("\n");

const userDataDir = mkdtempSync(join(tmpdir(), "relay-chromium-"));
mkdirSync(shots, { recursive: true });
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
  ],
});

try {
  const page = browser.pages()[0] || (await browser.newPage());
  const dialogs = [];
  const anyDialog = (dialog) => {
    dialogs.push(dialog.message());
    dialog.dismiss();
  };
  page.on("dialog", anyDialog);
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  // Anything the CSP had to block means something unsafe reached the page.
  await page.addInitScript(() => {
    window.__violations = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__violations.push(e.violatedDirective));
  });
  await page.emulateMedia({ colorScheme: "light" });

  // A channel longer than one page.
  for (let i = 1; i <= 130; i++) await post(`Earlier message ${i}`, i % 2 ? "codex" : "claude");

  const response = await page.goto(`${base}/c/${channel}`);
  const headers = response.headers();
  check("page has a strict CSP", /script-src 'self'/.test(headers["content-security-policy"]) &&
    !/unsafe-inline/.test(headers["content-security-policy"]), headers["content-security-policy"]);
  check("page sends nosniff and no-referrer", headers["x-content-type-options"] === "nosniff" &&
    headers["referrer-policy"] === "no-referrer");
  check("landmarks: banner, navigation, main", (await page.locator("header[role=banner], nav, main").count()) === 3);
  check("newest page of 100 messages shown", (await page.locator("#messages > .msg").count()) === 100);
  await page.waitForSelector("#live.on", { timeout: 5000 });
  check("live stream connected", true);
  await page.evaluate(() => { window.__sameDocument = true; });

  // Live: a review packet posted through REST appears without a reload.
  await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
  const posted = Date.now();
  const packetId = await post(PACKET);
  await page.waitForSelector(`#m-${packetId}`, { timeout: 5000 });
  const delay = Date.now() - posted;
  check("REST post appears live within a second", delay < 1000, `${delay} ms`);
  console.log(`live delay ${delay} ms`);
  check("no reload happened", await page.evaluate(() => window.__sameDocument === true));
  const packet = page.locator(`#m-${packetId}`);
  check("rust block highlighted", (await packet.locator(".hl-source.hl-rust .hl-storage").count()) > 0);
  const colour = (selector) => packet.locator(selector).first().evaluate((el) => getComputedStyle(el).color);
  check("keywords coloured apart from text", (await colour(".hl-storage")) !== (await colour("p")));
  const bg = (selector) => packet.locator(selector).first().evaluate((el) => getComputedStyle(el).backgroundColor);
  const [added, removed] = [await bg(".diff-add"), await bg(".diff-del")];
  check("diff lines coloured, added apart from removed",
    added !== removed && !added.includes("rgba(0, 0, 0, 0)") && !removed.includes("rgba(0, 0, 0, 0)"), [added, removed]);
  check("followed the new message at the bottom", await page.evaluate(() =>
    window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 40));
  check("copy button on code blocks", (await packet.locator(".code .copy").count()) === 3, await packet.locator(".code .copy").count());

  // XSS: nothing ran, and nothing dangerous is in the DOM.
  await page.waitForTimeout(300);
  check("no payload ran", (await page.evaluate(() => window.__xss)) === undefined && dialogs.length === 0,
    { xss: await page.evaluate(() => window.__xss), dialogs });
  const dangerous = await page.evaluate(() => {
    const found = [];
    for (const el of document.querySelectorAll(".msg-body *")) {
      if (["SCRIPT", "IFRAME", "SVG", "FORM", "STYLE", "OBJECT", "EMBED"].includes(el.tagName.toUpperCase())) found.push(el.tagName);
      for (const attr of el.attributes) {
        if (/^on/i.test(attr.name) || /^\s*javascript:/i.test(attr.value) || attr.name === "style") found.push(`${el.tagName}[${attr.name}]`);
      }
    }
    return found;
  });
  check("no script, iframe, handler or javascript: URL in messages", dangerous.length === 0, dangerous);
  check("payload text shown as text", (await packet.innerText()).includes("<script>window.__xss = 'script'</script>"));
  check("no CSP violations", (await page.evaluate(() => window.__violations.length)) === 0,
    await page.evaluate(() => window.__violations));

  // A reader scrolled up keeps their place when a message arrives.
  await page.evaluate(() => window.scrollTo(0, 0));
  const quietId = await post("Arrives while the reader is scrolled up", "codex");
  await page.waitForSelector(`#m-${quietId}`, { timeout: 5000 });
  check("scroll position kept when not at the bottom", (await page.evaluate(() => window.scrollY)) === 0);

  // The channel list stays current: this channel's count grows, and a new channel appears in
  // its sorted place, without a reload.
  const navCount = () => page.locator(`#channel-nav li[data-name="${channel}"] .count`).textContent();
  const countBefore = Number(await navCount());
  await post("Counted live", "codex");
  await page.waitForFunction((n) => Number(document.querySelector(`#channel-nav li[data-name="${n[0]}"] .count`).textContent) === n[1],
    [channel, countBefore + 1], { timeout: 5000 });
  check("channel count grows live", Number(await navCount()) === countBefore + 1);
  await post("A channel of its own", "codex", "aaa-new-channel");
  await page.waitForSelector('#channel-nav li[data-name="aaa-new-channel"]', { timeout: 5000 });
  const navNames = await page.locator("#channel-nav li").evaluateAll((items) => items.map((li) => li.dataset.name));
  check("a new channel appears live, in order", navNames[0] === "aaa-new-channel" &&
    JSON.stringify(navNames) === JSON.stringify([...navNames].sort()), navNames);
  check("the current channel stays marked", (await page.locator('#channel-nav a[aria-current="page"]').count()) === 1);

  // Presence, live: a long poll by codex shows "codex is listening on ...", and goes away
  // within seconds once the poll has ended.
  const listening = page.locator(`#channel-nav li[data-name="${channel}"] .listening`);
  const poll = fetch(`${base}/api/messages?target=${channel}&since_id=999999999&wait=2&exclude_sender=codex`);
  await page.waitForFunction((n) => document.querySelector(`#channel-nav li[data-name="${n}"] .listening`).textContent !== "",
    channel, { timeout: 5000 });
  check("a listener appears live", (await listening.textContent()) === `codex is listening on ${channel}`,
    await listening.textContent());
  await page.screenshot({ path: join(shots, "listening.png") });
  await poll;
  await page.waitForFunction((n) => document.querySelector(`#channel-nav li[data-name="${n}"] .listening`).textContent === "",
    channel, { timeout: 8000 });
  check("a listener that went away drops out", (await listening.isVisible()) === false);

  // Readers: where codex stands shows under the messages, live: its cursor as "codex:
  // acknowledged TIME" under the last message it covers; a wake the relay recorded and a read
  // under the newest message each covers. Picking codex above the channel list shows its
  // unread counts instead of message counts.
  const covered = await page.locator("#messages .msg").last().getAttribute("data-id");
  await fetch(`${base}/api/messages?target=${channel}&reader=codex&since_id=${covered}`);
  await page.waitForSelector(`#m-${covered} .seen`, { timeout: 5000 });
  const seenText = async (id) => page.locator(`#m-${id} .seen`).textContent();
  check("acknowledged, with its time, under the message the cursor passed",
    /^codex: acknowledged \S+/.test(await seenText(covered)), await seenText(covered));
  const unseen = await post("After codex's cursor", "claude");
  await page.waitForSelector(`#m-${unseen}`, { timeout: 5000 });
  check("a newer message shows no state", (await page.locator(`#m-${unseen} .seen`).count()) === 0 &&
    (await page.locator(".seen").count()) === 1);
  const woke = await fetch(`${base}/api/wakes`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ target: channel, reader: "codex", ids: [Number(unseen)], via: "the browser test" }) });
  check("a wake is recorded", woke.status === 201, String(woke.status));
  await fetch(`${base}/api/messages?target=${channel}&reader=codex`);
  await page.waitForFunction((id) => /read/.test(document.querySelector(`#m-${id} .seen`)?.textContent || ""),
    unseen, { timeout: 5000 });
  check("woken and read under the message, acknowledged still where the cursor is",
    /^codex: woken \S.*, read \S+/.test(await seenText(unseen)) && /^codex: acknowledged/.test(await seenText(covered)),
    `${await seenText(unseen)} | ${await seenText(covered)}`);
  await page.selectOption("#reader-pick", "codex");
  await page.waitForFunction((n) => /^1\//.test(document.querySelector(`#channel-nav li[data-name="${n}"] .count`).textContent),
    channel, { timeout: 5000 });
  check("the picked reader's unread count", (await navCount()).startsWith("1/"), await navCount());
  await page.waitForFunction((n) => document.querySelector(`#channel-nav li[data-name="${n}"] .listening`).textContent !== "",
    channel, { timeout: 5000 });
  check("a page with a reader picked listens as that reader", (await listening.textContent()) === `codex is listening on ${channel}`,
    await listening.textContent());
  await page.locator(`#m-${covered}`).scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, "seen-and-unread.png") });
  await page.selectOption("#reader-pick", "");
  await page.waitForFunction((n) => !document.querySelector(`#channel-nav li[data-name="${n}"] .count`).textContent.includes("/"),
    channel, { timeout: 5000 });

  // The post form: Ctrl+Enter sends, the status names the new id, the message arrives live.
  await page.getByLabel("Sender").fill("user");
  await page.getByLabel("Message (markdown)").fill("Posted from the **form** with Ctrl+Enter");
  await page.getByLabel("Message (markdown)").press("Control+Enter");
  await page.waitForFunction(() => /Posted #\d+/.test(document.getElementById("post-status").textContent), null, { timeout: 5000 });
  const formId = Number((await page.locator("#post-status").textContent()).match(/#(\d+)/)[1]);
  await page.waitForSelector(`#m-${formId}`, { timeout: 5000 });
  check("form post appears live", (await page.locator(`#m-${formId} strong`).textContent()) === "form");
  const stored = await (await fetch(`${base}/api/messages?target=${channel}&since_id=${formId - 1}&limit=1`)).json();
  check("form post stored as sent from the UI by its sender",
    stored.messages[0].source === "ui" && stored.messages[0].sender === "user", stored.messages[0]);
  check("form cleared after posting", (await page.getByLabel("Message (markdown)").inputValue()) === "");

  // Redaction: one by another client turns into its tombstone live; the Redact button asks for a
  // reason and does the same; neither text stays on the page.
  const leakedId = await post("my token is hunter2leaked");
  const pastedId = await post("and the .env: hunter2pasted");
  await page.waitForSelector(`#m-${pastedId}`, { timeout: 5000 });
  await fetch(`${base}/api/messages/${leakedId}`, { method: "DELETE", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ reason: "a token", by: "codex" }) });
  await page.waitForSelector(`#m-${leakedId}.redacted`, { timeout: 5000 });
  check("a message redacted elsewhere turns into its tombstone live",
    (await page.locator(`#m-${leakedId} .msg-body`).textContent()).trim() === "redacted by codex: a token");
  // The Redact button's prompt is the one dialog the page may open: answered, not counted.
  page.off("dialog", anyDialog);
  page.once("dialog", (dialog) => dialog.accept("pasted by mistake"));
  await page.locator(`#m-${pastedId} button.redact`).click();
  await page.waitForSelector(`#m-${pastedId}.redacted`, { timeout: 5000 });
  check("the Redact button takes the message back with its reason",
    /^redacted by \S+: pasted by mistake$/.test((await page.locator(`#m-${pastedId} .msg-body`).textContent()).trim()),
    await page.locator(`#m-${pastedId} .msg-body`).textContent());
  check("no redacted text stays on the page", !(await page.content()).includes("hunter2"));
  check("a tombstone has no Redact button", (await page.locator(`#m-${leakedId} button.redact`).count()) === 0);

  // Threads: Reply on a message, post from the form; the reply quotes and links what it answers;
  // the thread's page shows it and its replies and takes new replies live, nothing else.
  await page.locator(`#m-${formId} button.reply`).click();
  check("Reply says what it answers", (await page.locator("#replying").isVisible()) &&
    (await page.locator("#replying-link").textContent()) === `#${formId}`);
  await page.getByLabel("Message (markdown)").fill("Answering the form post");
  await page.getByLabel("Message (markdown)").press("Control+Enter");
  await page.waitForFunction(() => /Posted #\d+/.test(document.getElementById("post-status").textContent), null, { timeout: 5000 });
  const replyId = Number((await page.locator("#post-status").textContent()).match(/#(\d+)/)[1]);
  await page.waitForSelector(`#m-${replyId} .in-reply`, { timeout: 5000 });
  check("a reply shows what it answers, quoted, with a link",
    (await page.locator(`#m-${replyId} .in-reply a`).textContent()) === `↩ #${formId}` &&
    (await page.locator(`#m-${replyId} .in-reply q`).textContent()) === "Posted from the **form** with Ctrl+Enter" &&
    (await page.locator(`#m-${replyId} .in-reply a`).getAttribute("href")) === `/c/${channel}#m-${formId}`);
  check("replying ends after the post", (await page.locator("#replying").isHidden()));
  await page.locator(`#m-${replyId}`).scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, "reply.png") });
  const threadPage = await browser.newPage();
  await threadPage.goto(`${base}/c/${channel}/t/${formId}`);
  const threadIds = () => threadPage.locator("#messages > .msg").evaluateAll((items) => items.map((li) => Number(li.dataset.id)));
  check("the thread page shows the message and its reply", JSON.stringify(await threadIds()) === JSON.stringify([formId, replyId]),
    await threadIds());
  await threadPage.waitForFunction(() => document.getElementById("live").textContent === "live", null, { timeout: 5000 });
  await post("Not in the thread", "codex");
  const late = await (await fetch(`${base}/api/messages`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ target: channel, sender: "codex", text: "A late reply", reply_to: replyId }),
  })).json();
  await threadPage.waitForSelector(`#m-${late.posted}`, { timeout: 5000 });
  check("a new reply reaches the thread page live, and nothing else does",
    JSON.stringify(await threadIds()) === JSON.stringify([formId, replyId, late.posted]), await threadIds());
  check("the thread page's form answers the thread", (await threadPage.locator("#post-reply-to").inputValue()) === String(formId));
  await threadPage.screenshot({ path: join(shots, "thread.png") });

  // Search: the box on every page; results link to the message in its channel.
  await threadPage.getByLabel("Search all messages").fill("late reply");
  await threadPage.getByLabel("Search all messages").press("Enter");
  await threadPage.waitForSelector("#results-title", { timeout: 10000 });
  const deadline = Date.now() + 10000;
  while ((await threadPage.locator("#hits .hit").count()) === 0 && Date.now() < deadline) {
    await threadPage.reload();
  }
  const hit = threadPage.locator("#hits .hit").first();
  check("search finds the message, highlighted, linking to it",
    (await hit.locator("a").getAttribute("href")) === `/c/${channel}#m-${late.posted}` &&
    (await hit.locator(".snippet b").allTextContents()).join(" ") === "late reply", await hit.innerHTML());
  await threadPage.screenshot({ path: join(shots, "search.png") });
  const bad = await threadPage.goto(`${base}/search?q=%28unclosed`);
  check("a malformed query gets 400 and says why", bad.status() === 400 &&
    (await threadPage.locator("#search-error").textContent()).startsWith("q: "));
  await threadPage.close();
  await page.getByLabel("Message (markdown)").fill("   ");
  await page.getByLabel("Message (markdown)").press("Control+Enter");
  await page.waitForFunction(() => /Not posted/.test(document.getElementById("post-status").textContent), null, { timeout: 5000 });
  check("a refused post shows the relay's error", /text/.test(await page.locator("#post-status").textContent()),
    await page.locator("#post-status").textContent());

  // A long message is collapsed, with a button to expand it.
  const longId = await post(Array.from({ length: 120 }, (_, i) => `line ${i + 1}`).join("\n"), "codex");
  await page.waitForSelector(`#m-${longId}`, { timeout: 5000 });
  const more = page.locator(`#m-${longId} .more`);
  check("long message collapsed", (await more.textContent()) === "Show more" &&
    (await page.locator(`#m-${longId} .msg-body.collapsed`).count()) === 1);
  await more.click();
  check("show more expands it", (await more.textContent()) === "Show less" &&
    (await page.locator(`#m-${longId} .msg-body.collapsed`).count()) === 0 &&
    (await more.getAttribute("aria-expanded")) === "true");

  // Load older: the 30 messages above the first page, with the reader's place kept.
  const anchor = page.locator("#messages > .msg").first();
  const anchorId = await anchor.getAttribute("id");
  await page.evaluate(() => window.scrollTo(0, 0));
  const before = await page.locator(`#${anchorId}`).evaluate((el) => el.getBoundingClientRect().top);
  const shownBefore = await page.locator("#messages > .msg").count();
  await page.getByRole("button", { name: "Load older messages" }).click();
  await page.waitForFunction((n) => document.querySelectorAll("#messages > .msg").length > n, shownBefore, { timeout: 5000 });
  const after = await page.locator(`#${anchorId}`).evaluate((el) => el.getBoundingClientRect().top);
  check("load older brings the rest of the channel", (await page.locator("#messages > .msg").count()) === 141);
  check("load older keeps the reader's place", Math.abs(after - before) < 5, { before, after });
  check("no more older pages", (await page.locator("#load-older").count()) === 0);
  const ids = await page.$$eval("#messages > .msg", (els) => els.map((el) => Number(el.dataset.id)));
  check("messages oldest first, no duplicates", ids.every((id, i) => i === 0 || id > ids[i - 1]), ids);

  // Theme: follows the system, the toggle switches and is remembered.
  const pageBg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const lightBg = await pageBg();
  await page.locator("#theme-toggle").click();
  const darkBg = await pageBg();
  check("theme toggle switches to dark", lightBg !== darkBg && (await page.evaluate(() => document.documentElement.dataset.theme)) === "dark", [lightBg, darkBg]);

  // The relay restarts: the page reconnects and shows what was posted meanwhile, once.
  const lastShown = Math.max(...ids);
  console.log(`RESTART ${lastShown}`);
  const answer = (await lines.next()).value || "";
  const missedId = Number(answer.replace("POSTED ", ""));
  check("test posted a message while the page was disconnected", missedId > lastShown, answer);
  await page.waitForSelector(`#m-${missedId}`, { timeout: 15000 });
  await page.waitForSelector("#live.on", { timeout: 15000 });
  const afterId = await post("After the reconnect", "codex");
  await page.waitForSelector(`#m-${afterId}`, { timeout: 5000 });
  const all = await page.$$eval("#messages > .msg", (els) => els.map((el) => Number(el.dataset.id)));
  check("reconnected without losing or duplicating", new Set(all).size === all.length &&
    all.includes(missedId) && all.indexOf(afterId) === all.length - 1, all.slice(-5));
  check("still the same document", await page.evaluate(() => window.__sameDocument === true));

  // A channel that keeps 150 messages (the test's retention setting): 200 posted, the last older
  // page says the older ones expired where "Load older" was.
  for (let i = 1; i <= 200; i++) await post(`kept line ${i}`, "codex", "ui-kept");
  let keptTail = null;
  for (let tries = 0; tries < 50; tries++) {
    keptTail = await (await fetch(`${base}/api/messages?target=ui-kept&limit=200`)).json();
    if (keptTail.messages.length === 150) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  check("retention keeps 150 of 200", keptTail.messages.length === 150 && keptTail.expired_before > 0, keptTail.expired_before);
  await page.goto(`${base}/c/ui-kept`);
  check("no expiry note while older pages remain", (await page.locator("#expired-before").count()) === 0);
  await page.getByRole("button", { name: "Load older messages" }).click();
  await page.waitForSelector("#expired-before", { timeout: 5000 });
  check("the last older page says the older messages expired",
    /Older messages expired/.test(await page.locator("#expired-before").textContent()) &&
    (await page.locator("#load-older").count()) === 0 &&
    (await page.locator("#messages > .msg").count()) === 150);

  // The choice survives a reload.
  await page.reload();
  check("theme choice remembered", (await pageBg()) === darkBg);

  // Screenshots: the review packet in light and dark, and at a phone's width.
  await page.evaluate(() => localStorage.removeItem("relay-theme"));
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.goto("about:blank");
    await page.goto(`${base}/c/${channel}#m-${packetId}`);
    await page.waitForSelector("#live.on", { timeout: 5000 });
    await page.screenshot({ path: join(shots, `channel-${scheme}.png`) });
  }
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto("about:blank");
  await page.goto(`${base}/c/${channel}#m-${packetId}`);
  check("fits a phone's width", (await page.evaluate(() => document.documentElement.scrollWidth)) <= 390,
    await page.evaluate(() => document.documentElement.scrollWidth));
  await page.screenshot({ path: join(shots, "channel-phone-dark.png") });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.emulateMedia({ colorScheme: "light" });
  await page.goto(`${base}/`);
  check("index lists the channel with its count", (await page.locator(`.cards a[href="/c/${channel}"]`).innerText()).includes("messages"));
  await post("Appears on the index", "codex", "zzz-index-channel");
  await page.waitForSelector('#channel-cards li[data-name="zzz-index-channel"]', { timeout: 5000 });
  check("a new channel appears on the index live",
    (await page.locator('#channel-cards li[data-name="zzz-index-channel"] .count').textContent()) === "1 messages");
  await post("And counts", "codex", "zzz-index-channel");
  await page.waitForFunction(() => document.querySelector('#channel-cards li[data-name="zzz-index-channel"] .count').textContent === "2 messages",
    null, { timeout: 5000 });
  check("an index count grows live", true);
  await page.screenshot({ path: join(shots, "index-light.png") });
  check("no script errors", pageErrors.length === 0, pageErrors);
  console.log(`screenshots in ${shots}`);
} catch (error) {
  console.log(`FAILED ${error.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
  stdin.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
