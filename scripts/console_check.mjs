// The console in a real browser (headless Chromium driven by playwright-core), run by the consumer's
// end-to-end test. It signs in as a merchant and as an admin, and checks from the rendered page that the
// figures shown are the API's for the period the page says it shows, and that another merchant's place is
// absent. With SCREENSHOT_DIR set it saves a screenshot of each page there (docs/console/).
//
// Environment: CONSUMER_URL, MERCHANT_TOKEN, ADMIN_TOKEN, OWN_PLACE, FOREIGN_PLACE, PLAYWRIGHT_DIR,
// CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR (optional).

import assert from "node:assert/strict";
import path from "node:path";

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};
const base = env("CONSUMER_URL");
const screenshots = process.env.SCREENSHOT_DIR;
const { chromium } = await import(path.join(env("PLAYWRIGHT_DIR"), "node_modules/playwright-core/index.mjs"));

const browser = await chromium.launch({
  executablePath: env("CHROMIUM", "/usr/bin/chromium"),
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});

async function apiGet(token, pathAndQuery) {
  const response = await fetch(`${base}${pathAndQuery}`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(response.status, 200, `${pathAndQuery} answered ${response.status}`);
  return response.json();
}

const plain = (text) => text.replaceAll(",", "");
const cents = (value) => Number(value).toFixed(2);

async function signIn(page, token) {
  page.on("pageerror", (error) => console.error(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") console.error(`page console: ${message.text()}`);
  });
  await page.goto(`${base}/console/`);
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.waitForSelector("#main[data-ready]");
}

async function shown(page, prefix) {
  const figure = async (field) => plain(await page.textContent(`[data-testid=${prefix}-${field}]`));
  return {
    purchases: await figure("purchases"),
    total: await figure("total"),
    average: await figure("average"),
    vat: await figure("vat"),
    tips: await figure("tips"),
  };
}

function expected(figures) {
  return {
    purchases: String(figures.total_purchases),
    total: cents(figures.total_amount),
    average: cents(figures.average_receipt),
    vat: cents(figures.taxes_amount.total_vat),
    tips: cents(figures.taxes_amount.total_tips),
  };
}

async function periodShown(page) {
  return { from: await page.getAttribute("#period", "data-from"), to: await page.getAttribute("#period", "data-to") };
}

async function snap(page, name) {
  if (screenshots) await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true });
}

try {
  const merchantToken = env("MERCHANT_TOKEN");
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await signIn(page, merchantToken);
  assert.equal(await page.evaluate(() => location.href.includes("token")), false, "the token is not in the URL");

  // The last 12 months, whose figures must be the API's for the same period.
  await page.selectOption("#preset", "year");
  await page.waitForFunction(() => document.querySelector("#main")?.dataset.ready === "overview"
    && document.querySelector("#preset")?.value === "year");
  let range = await periodShown(page);
  const overview = await apiGet(merchantToken, `/api/analytics/?from=${encodeURIComponent(range.from)}&to=${encodeURIComponent(range.to)}&page_size=20`);
  assert.deepEqual(await shown(page, "summary"), expected(overview.summary), "summary figures = API");
  assert.ok(overview.summary.total_purchases > 0, "the period holds purchases");
  const places = await page.$$eval("tr[data-place]", (rows) => rows.map((row) => row.dataset.place));
  assert.deepEqual([...places].sort(), overview.results.map((place) => place.place_id).sort(), "places = API");
  assert.ok(places.includes(env("OWN_PLACE")), "the merchant's place is listed");
  assert.ok(!places.includes(env("FOREIGN_PLACE")), "another merchant's place is absent");
  assert.ok(await page.$("svg[aria-label^='Purchases']"), "a chart over time");
  await snap(page, "overview");

  // Sorting by purchases, ascending then descending, keeps every place.
  await page.click("th:nth-child(2) button");
  const sorted = await page.$$eval("tr[data-place] td:nth-child(2)", (cells) => cells.map((cell) => Number(cell.textContent)));
  assert.deepEqual(sorted, [...sorted].sort((a, b) => b - a), "sorted by purchases, most first");

  // A place's own page.
  await page.click(`tr[data-place="${env("OWN_PLACE")}"] a`);
  await page.waitForFunction(() => document.querySelector("#main")?.dataset.ready === "place");
  range = await periodShown(page);
  const placeFigures = await apiGet(merchantToken,
    `/api/places/${encodeURIComponent(env("OWN_PLACE"))}/analytics/?from=${encodeURIComponent(range.from)}&to=${encodeURIComponent(range.to)}`);
  assert.deepEqual(await shown(page, "place"), expected(placeFigures), "the place's figures = API");
  await snap(page, "place");

  // Another merchant's place is not there for this merchant.
  await page.goto(`${base}/console/#/places/${encodeURIComponent(env("FOREIGN_PLACE"))}`);
  await page.waitForSelector("[role=alert]");
  assert.match(await page.textContent("[role=alert]"), /404|no place/i);

  // A phone's width.
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await signIn(phone, merchantToken);
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page fits a phone's width (overflow ${overflow}px)`);
  await snap(phone, "overview-phone");

  // An admin: the fleet page.
  const admin = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await signIn(admin, env("ADMIN_TOKEN"));
  await admin.click("#nav-fleet");
  await admin.waitForFunction(() => document.querySelector("#main")?.dataset.ready === "fleet");
  const fleet = await apiGet(env("ADMIN_TOKEN"), "/api/fleet/");
  assert.equal(await admin.textContent("[data-testid=fleet-replicas]"), String(fleet.workers.length));
  assert.ok(fleet.workers.length >= 1, "a worker replica is registered");
  assert.equal(await admin.$$eval("tr[data-worker]", (rows) => rows.length), fleet.workers.length);
  await admin.click("text=Queue a recompute of every place");
  await admin.waitForFunction(() => /queued: job/.test(document.querySelector("#recompute-status")?.textContent || ""));
  await snap(admin, "fleet");

  // The merchant does not get a fleet link.
  assert.equal(await page.isVisible("#nav-fleet"), false, "no fleet page for a merchant");
  console.log("console check passed");
} finally {
  await browser.close();
}
