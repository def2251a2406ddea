// `medanchor-bench portal` runs this against a portal it started: each
// page's cold first render (first contentful paint, the HTTP cache off,
// median of RUNS loads) in headless Chromium, against the same page as a
// static file (its HTML saved and served by a bare node:http server, the
// same assets) measured in the same run — the ratio is what rendering it
// from the service costs over sending bytes.
import { createServer } from "node:http";
import { chromium } from "playwright-core";
import { coldLoad } from "./portal-measure.mjs";

const BASE = process.env.MEDANCHOR_URL;
const RECORD = process.env.RECORD;
const PATIENT = process.env.PATIENT;
const RUNS = Number(process.env.RUNS || 5);
const TARGET_MS = 200, TARGET_BYTES = 100 * 1024;

const pages = [
  [null, ["/sign-in"]],
  ["wallet_1", ["/patient", "/patient/history", "/patient/shares", "/patient/profile", "/patient/records"]],
  ["wallet_2", ["/provider", `/provider/patients/${PATIENT}`, `/records/${RECORD}`, `/provider/patients/${PATIENT}/new?template=lab-result`]],
  ["faucet", ["/audit/log", "/admin/analytics", `/audit/verify?record=${RECORD}`]],
];

const saved = new Map();
const server = createServer((req, res) => {
  res.setHeader("content-type", "text/html; charset=utf-8");
  res.end(saved.get(req.url) || "");
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const STATIC = `http://127.0.0.1:${server.address().port}`;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
const rows = [];
for (const [who, paths] of pages) {
  const context = await browser.newContext();
  const page = await context.newPage();
  if (who) {
    await page.goto(`${BASE}/sign-in`);
    await page.selectOption("#f-account", who);
    await page.getByRole("button", { name: "Sign in with the development wallet" }).click();
    await page.waitForURL((u) => !u.pathname.startsWith("/sign-in"));
  }
  for (const path of paths) {
    const portal = await coldLoad(page, `${BASE}${path}`, RUNS);
    const html = (await page.content()).replace("<head>", `<head><base href="${BASE}/">`);
    const key = `/${rows.length}`;
    saved.set(key, html);
    const baseline = await coldLoad(page, `${STATIC}${key}`, RUNS);
    rows.push({ page: path.replace(/S[TPMN][0-9A-Z]{28,}|[0-9a-f]{32}/g, "…"), portal_fcp_ms: portal.fcp_ms, static_fcp_ms: baseline.fcp_ms, ratio: portal.fcp_ms / baseline.fcp_ms, bytes: portal.bytes });
  }
  await context.close();
}
await browser.close();
server.close();

if (process.env.JSON) {
  console.log(JSON.stringify({ runs: RUNS, target_ms: TARGET_MS, target_bytes: TARGET_BYTES, pages: rows }, null, 2));
} else {
  console.log(`portal pages, cold first render in headless Chromium (median of ${RUNS}), against the same HTML as a static file`);
  console.log("page                                   portal     static   ratio   transferred");
  for (const r of rows) {
    console.log(`${r.page.padEnd(36)} ${r.portal_fcp_ms.toFixed(0).padStart(6)} ms ${r.static_fcp_ms.toFixed(0).padStart(6)} ms ${r.ratio.toFixed(2).padStart(6)} ${(r.bytes / 1024).toFixed(1).padStart(9)} KB`);
  }
  const worst = rows.reduce((a, b) => (b.portal_fcp_ms > a.portal_fcp_ms ? b : a));
  const heaviest = rows.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  console.log(`slowest ${worst.page} ${worst.portal_fcp_ms.toFixed(0)} ms (target < ${TARGET_MS} ms: ${worst.portal_fcp_ms < TARGET_MS ? "met" : "NOT met"}); heaviest ${heaviest.page} ${(heaviest.bytes / 1024).toFixed(1)} KB (target < 100 KB: ${heaviest.bytes < TARGET_BYTES ? "met" : "NOT met"})`);
}
