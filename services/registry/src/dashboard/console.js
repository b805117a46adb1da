// What every console page shares: building elements, formatting figures, the signed-in
// token and the calls to the registry's API, and the header (navigation, sign-in).
"use strict";

const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
};
const pct = (x) => x == null ? "–" : (100 * x).toFixed(1) + "%";
const secs = (s) => s == null ? "–" : s < 60 ? s.toFixed(2) + " s" : (s / 60).toFixed(1) + " min";
const fixed = (x, n = 4) => x == null ? "–" : Number(x).toFixed(n);
const when = (ms) => ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 19) + "Z" : "–";
// A link only to the console itself or to http(s): a URL a publisher chose (a CI run's)
// could otherwise be `javascript:` and act with the signed-in token.
const link = (href, text) => /^(https?:\/\/|\/(?!\/))/i.test(href) ? el("a", { href }, text) : el("span", {}, text);
const runLink = (id) => link("/runs/" + encodeURIComponent(id), id);
const modelLink = (m) => link("/models/" + encodeURIComponent(m), m);

// The token: `#token=tg_...` in the address (the fragment never leaves the browser) or
// the sign-in field; kept for this tab only (sessionStorage).
const TOKEN_KEY = "tollgate.token";
(() => {
  const given = new URLSearchParams(location.hash.slice(1)).get("token");
  if (given) {
    sessionStorage.setItem(TOKEN_KEY, given);
    history.replaceState(null, "", location.pathname + location.search);
  }
})();
const token = () => sessionStorage.getItem(TOKEN_KEY) || "";
const headers = () => token() ? { Authorization: "Bearer " + token() } : {};

/// GET an API path as JSON; rejects with the registry's reason.
async function api(path) {
  const r = await fetch(path, { headers: headers() });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(`${path}: ${r.status} ${body.error || ""}`.trim());
  return body;
}

/// POST `body` as JSON to an API path; resolves to { ok, status, body }.
async function send(path, body) {
  const r = await fetch(path, {
    method: "POST",
    headers: { ...headers(), "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return { ok: r.ok, status: r.status, body: await r.json().catch(() => ({})) };
}

/// The header: the title, the navigation and who is signed in (or a sign-in field).
async function header(title) {
  const who = el("div", { class: "who", id: "who" });
  document.body.prepend(el("header", {},
    el("h1", {}, link("/", "Tollgate")),
    el("nav", {}, link("/", "Dashboard"), link("/approvals", "Approvals")),
    el("small", { id: "title" }, title), who));
  let me = null;
  try {
    me = await api("/api/whoami");
  } catch (e) {
    me = null;
  }
  if (me && !me.open) {
    const out = el("button", { id: "sign-out" }, "sign out");
    out.onclick = () => { sessionStorage.removeItem(TOKEN_KEY); location.reload(); };
    who.append(el("span", { id: "identity", "data-role": me.role }, `${me.identity} (${me.role})`), out);
  } else if (me) {
    who.append(el("span", { id: "identity", "data-role": "open" }, "open registry: no tokens checked"));
  } else {
    const field = el("input", { id: "token", type: "password", placeholder: "registry token (tg_...)" });
    const go = el("button", { id: "sign-in" }, "sign in");
    go.onclick = () => { sessionStorage.setItem(TOKEN_KEY, field.value.trim()); location.reload(); };
    who.append(field, go);
  }
  return me;
}

/// Shows why a page could not load, in place of its content.
function failed(e) {
  document.querySelector("main").replaceChildren(el("section", { class: "error", id: "error" }, String(e.message || e)));
  document.body.dataset.loaded = "error";
}

/// A table with `head` cells and `rows` (arrays of cells, or elements).
function table(id, head, rows, empty = "none") {
  return el("table", { id },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", {}, h)))),
    el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: head.length, class: "muted" }, empty))])));
}

/// The metrics two versions both have, in a fixed order first.
function sharedMetrics(a, b) {
  const first = ["auc_roc", "f1", "precision", "recall", "accuracy", "log_loss"];
  const names = Object.keys(a || {}).filter((k) => b && k in b);
  return [...first.filter((k) => names.includes(k)), ...names.filter((k) => !first.includes(k)).sort()];
}

/// Metrics where a smaller value is the better one.
const LOWER_IS_BETTER = ["log_loss", "fn", "fp"];

/// A table of `candidate`'s metrics against Production's, with the change.
function againstProduction(id, candidate, production) {
  if (!production) return el("p", { class: "muted", id }, "No Production version to compare with yet.");
  const rows = sharedMetrics(candidate.metrics, production.metrics).map((m) => {
    const d = candidate.metrics[m] - production.metrics[m];
    const better = LOWER_IS_BETTER.includes(m) ? d <= 0 : d >= 0;
    return el("tr", { "data-metric": m }, el("td", {}, m), el("td", {}, fixed(candidate.metrics[m])),
      el("td", {}, fixed(production.metrics[m])), el("td", { class: better ? "pass" : "fail" }, (d >= 0 ? "+" : "") + d.toFixed(4)));
  });
  return table(id, ["metric", `v${candidate.version}`, `v${production.version} (Production)`, "change"], rows);
}
