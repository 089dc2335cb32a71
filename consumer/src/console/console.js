// The receipts console: analytics for analysts, merchants and admins, and the worker fleet for admins.
// Everything comes from the consumer's API with the token kept in this tab's sessionStorage (never in a URL,
// never logged). Charts are drawn here as SVG; there is no third-party code and nothing is fetched from
// elsewhere.
"use strict";

const TOKEN_KEY = "receipts-token";
const main = document.getElementById("main");
const session = { me: null };

// ---------------------------------------------------------------- talking to the API

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    method: options.method || "GET",
    headers: { Authorization: `Bearer ${token()}`, Accept: options.accept || "application/json" },
  });
  if (response.status === 401) {
    signOut("Your token was not accepted; sign in again.");
    throw new Error("unauthorized");
  }
  if (!response.ok) {
    let message = `${response.status}`;
    try {
      message = (await response.json()).message || message;
    } catch (_) {
      // not JSON: the status says enough
    }
    throw new Error(message);
  }
  return options.accept === "text/csv" ? response.blob() : response.json();
}

function query(parameters) {
  const pairs = Object.entries(parameters).filter(([, value]) => value !== undefined && value !== null && value !== "");
  return pairs.length ? `?${new URLSearchParams(pairs)}` : "";
}

// ---------------------------------------------------------------- small DOM helpers

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function money(value) {
  return Number(value).toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function failure(error) {
  return element("p", { class: "error", role: "alert", text: `Could not load: ${error.message}` });
}

// ---------------------------------------------------------------- periods

const PRESETS = [
  ["today", "Today"],
  ["week", "Last 7 days"],
  ["month", "This month"],
  ["year", "Last 12 months"],
  ["custom", "Custom"],
];

const view = { preset: "week", customFrom: "", customTo: "", page: 1, sort: { key: "total_amount", descending: true } };

function utcMidnight(date) {
  return new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
}

// The period a preset means now, and the bucket its chart uses: hours up to two days, days beyond.
function period() {
  const now = new Date();
  let from;
  let to = now;
  switch (view.preset) {
    case "today":
      from = utcMidnight(now);
      break;
    case "month":
      from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
      break;
    case "year":
      from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 11, 1));
      break;
    case "custom":
      from = view.customFrom ? new Date(`${view.customFrom}T00:00:00Z`) : new Date(now - 7 * 86400e3);
      to = view.customTo ? new Date(Date.parse(`${view.customTo}T00:00:00Z`) + 86400e3) : now;
      break;
    default:
      from = new Date(utcMidnight(now) - 6 * 86400e3);
  }
  const bucket = to - from <= 2 * 86400e3 ? "hour" : "day";
  return { from: from.toISOString(), to: to.toISOString(), bucket };
}

function periodControls(onChange) {
  const preset = element(
    "select",
    { id: "preset", onchange: (event) => { view.preset = event.target.value; view.page = 1; onChange(); } },
    PRESETS.map(([value, label]) => element("option", { value, selected: value === view.preset, text: label })),
  );
  const custom = view.preset === "custom";
  const date = (id, label, key) =>
    element("label", { for: id }, label,
      element("input", { id, type: "date", value: view[key], onchange: (event) => { view[key] = event.target.value; onChange(); } }));
  return element("div", { class: "controls panel" },
    element("label", { for: "preset" }, "Period", preset),
    custom ? date("custom-from", "From (UTC)", "customFrom") : null,
    custom ? date("custom-to", "To, inclusive (UTC)", "customTo") : null);
}

// ---------------------------------------------------------------- charts (SVG)

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children.flat(Infinity)) if (child) node.append(child);
  return node;
}

function label(start, bucket) {
  const date = new Date(start);
  return bucket === "hour" ? `${date.toISOString().slice(11, 13)}h` : date.toISOString().slice(5, 10);
}

// Purchases as bars and revenue as a line, over the period's buckets.
function seriesChart(series) {
  const width = 640;
  const height = 220;
  const pad = { left: 36, right: 44, top: 12, bottom: 26 };
  const results = series.results;
  const maxCount = Math.max(1, ...results.map((bucket) => bucket.total_purchases));
  const maxAmount = Math.max(1, ...results.map((bucket) => Number(bucket.total_amount)));
  const slot = (width - pad.left - pad.right) / Math.max(1, results.length);
  const y = (value, max) => height - pad.bottom - (value / max) * (height - pad.top - pad.bottom);
  const bars = results.map((bucket, index) =>
    svg("rect", {
      x: pad.left + index * slot + slot * 0.15, y: y(bucket.total_purchases, maxCount),
      width: Math.max(1, slot * 0.7), height: height - pad.bottom - y(bucket.total_purchases, maxCount), fill: "#9db6ea",
    }, svg("title", {}, `${label(bucket.start, series.bucket)}: ${bucket.total_purchases} purchases, ${money(bucket.total_amount)}`)));
  const points = results
    .map((bucket, index) => `${pad.left + index * slot + slot / 2},${y(Number(bucket.total_amount), maxAmount)}`)
    .join(" ");
  const every = Math.max(1, Math.ceil(results.length / 8));
  const ticks = results
    .map((bucket, index) => (index % every === 0
      ? svg("text", { x: pad.left + index * slot + slot / 2, y: height - 8, "text-anchor": "middle" }, label(bucket.start, series.bucket))
      : null));
  return svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Purchases (bars) and revenue (line) over time" },
    bars,
    svg("polyline", { points, fill: "none", stroke: "#1f8a5b", "stroke-width": 2 }),
    svg("text", { x: 4, y: 12 }, `${maxCount} purchases`),
    svg("text", { x: width - 4, y: 12, "text-anchor": "end" }, money(maxAmount)),
    ticks);
}

// Spending by category, as horizontal bars.
function categoryChart(categories) {
  const entries = Object.entries(categories).sort((a, b) => Number(b[1].total_spent) - Number(a[1].total_spent)).slice(0, 10);
  if (!entries.length) return element("p", { class: "notice", text: "No purchases in this period." });
  const width = 320;
  const row = 26;
  const max = Math.max(...entries.map(([, figures]) => Number(figures.total_spent)), 1);
  const rows = entries.map(([name, figures], index) => [
    svg("text", { x: 0, y: index * row + 16 }, name),
    svg("rect", { x: 110, y: index * row + 5, width: Math.max(1, (Number(figures.total_spent) / max) * (width - 180)), height: 14, fill: "#2457c5" }),
    svg("text", { x: width, y: index * row + 16, "text-anchor": "end" }, money(figures.total_spent)),
  ]);
  return svg("svg", { viewBox: `0 0 ${width} ${entries.length * row + 4}`, role: "img", "aria-label": "Spending by category" }, rows);
}

// ---------------------------------------------------------------- figures

function summaryCards(figures, prefix) {
  const card = (field, title, value) =>
    element("div", {}, element("dt", { text: title }), element("dd", { "data-testid": `${prefix}-${field}`, text: value }));
  return element("dl", { class: "cards" },
    card("purchases", "Purchases", String(figures.total_purchases)),
    card("total", "Revenue", money(figures.total_amount)),
    card("average", "Average receipt", money(figures.average_receipt)),
    card("vat", "VAT", money(figures.taxes_amount.total_vat)),
    card("tips", "Tips", money(figures.taxes_amount.total_tips)));
}

function periodNote(range) {
  return element("p", { id: "period", class: "notice", "data-from": range.from, "data-to": range.to,
    text: `From ${range.from.replace(".000Z", "Z")} to ${range.to.replace(".000Z", "Z")} (UTC), by ${range.bucket}.` });
}

async function download(path, name) {
  const blob = await api(path, { accept: "text/csv" });
  const link = element("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

// ---------------------------------------------------------------- pages

const PLACE_COLUMNS = [
  ["place_id", "Place", false],
  ["total_purchases", "Purchases", true],
  ["total_amount", "Revenue", true],
  ["average_receipt", "Average", true],
  ["vat", "VAT", true],
  ["tips", "Tips", true],
];

function sortValue(place, key) {
  if (key === "vat") return Number(place.taxes_amount.total_vat);
  if (key === "tips") return Number(place.taxes_amount.total_tips);
  if (key === "place_id") return place.place_name || place.place_id;
  return Number(place[key]);
}

function placesTable(overview, rerender) {
  const rows = [...overview.results].sort((a, b) => {
    const [left, right] = [sortValue(a, view.sort.key), sortValue(b, view.sort.key)];
    const order = left < right ? -1 : left > right ? 1 : 0;
    return view.sort.descending ? -order : order;
  });
  const header = PLACE_COLUMNS.map(([key, title, numeric]) => {
    const sorted = view.sort.key === key;
    return element("th", { class: numeric ? "num" : null, scope: "col", "aria-sort": sorted ? (view.sort.descending ? "descending" : "ascending") : "none" },
      element("button", { type: "button", onclick: () => {
        view.sort = { key, descending: sorted ? !view.sort.descending : numeric };
        rerender();
      } }, `${title}${sorted ? (view.sort.descending ? " ▼" : " ▲") : ""}`));
  });
  const body = rows.map((place) => element("tr", { "data-place": place.place_id },
    element("td", {}, element("a", { href: `#/places/${encodeURIComponent(place.place_id)}`, text: place.place_name || place.place_id })),
    element("td", { class: "num", text: String(place.total_purchases) }),
    element("td", { class: "num", text: money(place.total_amount) }),
    element("td", { class: "num", text: money(place.average_receipt) }),
    element("td", { class: "num", text: money(place.taxes_amount.total_vat) }),
    element("td", { class: "num", text: money(place.taxes_amount.total_tips) })));
  return element("div", { class: "table-wrap" },
    element("table", {}, element("caption", { class: "notice", text: `${overview.count} places, page ${view.page}` }),
      element("thead", {}, element("tr", {}, header)), element("tbody", {}, body)));
}

async function overviewPage() {
  const range = period();
  const render = async () => {
    let overview;
    let series;
    try {
      [overview, series] = await Promise.all([
        api(`/api/analytics/${query({ from: range.from, to: range.to, page: view.page, page_size: 20 })}`),
        api(`/api/analytics/timeseries/${query({ from: range.from, to: range.to, bucket: range.bucket })}`),
      ]);
    } catch (error) {
      show(element("h1", { text: "Overview" }), periodControls(overviewPage), failure(error));
      return;
    }
    const rerender = () => show(...content());
    const content = () => [
      element("h1", { text: "Overview" }),
      periodControls(overviewPage),
      periodNote(range),
      summaryCards(overview.summary, "summary"),
      element("div", { class: "charts" },
        element("section", { class: "panel", "aria-labelledby": "over-time" }, element("h2", { id: "over-time", text: "Purchases and revenue over time" }), seriesChart(series)),
        element("section", { class: "panel", "aria-labelledby": "by-category" }, element("h2", { id: "by-category", text: "Spending by category" }), categoryChart(overview.summary.category_analytics))),
      element("section", { "aria-labelledby": "places" },
        element("h2", { id: "places", text: "Places" }),
        placesTable(overview, rerender),
        element("div", { class: "pager" },
          element("button", { type: "button", class: "secondary", disabled: overview.previous ? null : "disabled", onclick: () => { view.page -= 1; overviewPage(); } }, "Previous"),
          element("button", { type: "button", class: "secondary", disabled: overview.next ? null : "disabled", onclick: () => { view.page += 1; overviewPage(); } }, "Next"))),
      element("p", { class: "controls" },
        element("button", { type: "button", class: "secondary", onclick: () => download(`/api/analytics/${query({ from: range.from, to: range.to })}`, "places.csv") }, "Download places (CSV)"),
        element("button", { type: "button", class: "secondary", onclick: () => download(`/api/analytics/timeseries/${query({ from: range.from, to: range.to, bucket: range.bucket })}`, "timeseries.csv") }, "Download series (CSV)")),
    ];
    rerender();
    main.setAttribute("data-ready", "overview");
  };
  main.removeAttribute("data-ready");
  await render();
}

async function placePage(placeId) {
  const range = period();
  main.removeAttribute("data-ready");
  let place;
  let figures;
  let series;
  try {
    [place, figures, series] = await Promise.all([
      api(`/api/places/${encodeURIComponent(placeId)}/`),
      api(`/api/places/${encodeURIComponent(placeId)}/analytics/${query({ from: range.from, to: range.to })}`),
      api(`/api/analytics/timeseries/${query({ from: range.from, to: range.to, bucket: range.bucket, place_id: placeId })}`),
    ]);
  } catch (error) {
    show(element("h1", { text: placeId }), failure(error));
    return;
  }
  show(
    element("p", {}, element("a", { href: "#/", text: "← All places" })),
    element("h1", { text: place.place_name || place.place_id }),
    element("p", { class: "notice", text: `${place.place_id} · merchant ${place.merchant_id} · ${place.total_purchases} purchases in all` }),
    periodControls(() => placePage(placeId)),
    periodNote(range),
    summaryCards(figures, "place"),
    element("div", { class: "charts" },
      element("section", { class: "panel", "aria-labelledby": "place-time" }, element("h2", { id: "place-time", text: "Purchases and revenue over time" }), seriesChart(series)),
      element("section", { class: "panel", "aria-labelledby": "place-categories" }, element("h2", { id: "place-categories", text: "Spending by category" }), categoryChart(figures.category_analytics))),
    element("p", {}, element("button", { type: "button", class: "secondary", onclick: () => download(`/api/analytics/timeseries/${query({ from: range.from, to: range.to, bucket: range.bucket, place_id: placeId })}`, `${placeId}.csv`) }, "Download series (CSV)")),
  );
  main.setAttribute("data-ready", "place");
}

function timeText(value) {
  return value ? value.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC") : "—";
}

async function fleetPage() {
  main.removeAttribute("data-ready");
  let fleet;
  try {
    fleet = await api("/api/fleet/");
  } catch (error) {
    show(element("h1", { text: "Worker fleet" }), failure(error));
    return;
  }
  const now = Date.now();
  const table = (caption, columns, rows) => element("div", { class: "table-wrap panel" },
    element("table", {}, element("caption", { text: caption }),
      element("thead", {}, element("tr", {}, columns.map((column) => element("th", { scope: "col", text: column })))),
      element("tbody", {}, rows)));
  const depth = fleet.jobs.filter((entry) => entry.status === "queued" || entry.status === "retrying").reduce((sum, entry) => sum + entry.count, 0);
  const status = element("p", { id: "recompute-status", role: "status", class: "notice" });
  show(
    element("h1", { text: "Worker fleet" }),
    element("dl", { class: "cards" },
      element("div", {}, element("dt", { text: "Replicas" }), element("dd", { "data-testid": "fleet-replicas", text: String(fleet.workers.length) })),
      element("div", {}, element("dt", { text: "Queue depth" }), element("dd", { "data-testid": "fleet-depth", text: String(depth) })),
      element("div", {}, element("dt", { text: "Consumer lag" }), element("dd", { "data-testid": "fleet-lag", text: String(fleet.consumer_lag) })),
      element("div", {}, element("dt", { text: "Outbox backlog" }), element("dd", { "data-testid": "fleet-backlog", text: String(fleet.outbox_backlog) }))),
    element("p", { class: "controls" },
      element("button", { type: "button", onclick: async () => {
        status.textContent = "Queuing…";
        try {
          const job = await api("/api/analytics/recompute/", { method: "POST" });
          status.textContent = `Recompute queued: job ${job.job_id}.`;
        } catch (error) {
          status.textContent = `Could not queue a recompute: ${error.message}`;
        }
      } }, "Queue a recompute of every place"),
      status),
    table("Worker replicas", ["Replica", "Last heartbeat", "State"], fleet.workers.map((worker) => {
      const alive = worker.last_heartbeat && now - Date.parse(worker.last_heartbeat) < 15000;
      return element("tr", { "data-worker": worker.name },
        element("td", { text: worker.name }),
        element("td", { text: timeText(worker.last_heartbeat) }),
        element("td", { class: alive ? "ok" : "stale", text: alive ? "alive" : "silent" }));
    })),
    table("Jobs by state", ["State", "Jobs"], fleet.jobs.map((entry) =>
      element("tr", {}, element("td", { text: entry.status }), element("td", { class: "num", text: String(entry.count) })))),
    table("Latest failures", ["Job", "Kind", "Attempts", "Error", "Created"], fleet.recent_failures.map((job) =>
      element("tr", {}, element("td", { text: job.id }), element("td", { text: job.kind }), element("td", { class: "num", text: String(job.attempts) }),
        element("td", { text: job.last_error || "" }), element("td", { text: timeText(job.created_at) })))),
    table("Hourly slots", ["Slot", "Runs", "Buckets", "Finished"], fleet.hourly_slots.map((slot) =>
      element("tr", {}, element("td", { text: timeText(slot.slot) }), element("td", { class: slot.runs === 1 ? "num" : "num stale", text: String(slot.runs) }),
        element("td", { class: "num", text: String(slot.buckets) }), element("td", { text: timeText(slot.finished_at) })))),
  );
  main.setAttribute("data-ready", "fleet");
}

// ---------------------------------------------------------------- signing in and routing

function signInPage(message) {
  const input = element("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: "required" });
  const note = element("p", { class: "error", role: "alert", text: message || "" });
  show(element("section", { class: "signin panel" },
    element("h1", { text: "Sign in" }),
    element("p", { class: "notice", text: "Use an API token. It stays in this browser tab only." }),
    element("form", { onsubmit: async (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      await start();
    } }, element("label", { for: "token", text: "API token" }), input, element("button", { type: "submit", text: "Sign in" })),
    note));
  input.focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  session.me = null;
  document.getElementById("nav").hidden = true;
  signInPage(message);
}

async function route() {
  if (!session.me) return;
  const hash = location.hash || "#/";
  const place = hash.match(/^#\/places\/(.+)$/);
  if (place) await placePage(decodeURIComponent(place[1]));
  else if (hash === "#/fleet" && session.me.role === "admin") await fleetPage();
  else await overviewPage();
  main.focus();
}

async function start() {
  if (!token()) {
    signInPage();
    return;
  }
  try {
    session.me = await api("/api/me/");
  } catch (error) {
    if (error.message !== "unauthorized") signOut(`Could not sign in: ${error.message}`);
    return;
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("nav-fleet").hidden = session.me.role !== "admin";
  document.getElementById("who").textContent = session.me.merchant_id ? `${session.me.role} · ${session.me.merchant_id}` : session.me.role;
  await route();
}

document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
start();
