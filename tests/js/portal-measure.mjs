// How a page loads in the browser, cold (the HTTP cache off): when it
// first rendered (first contentful paint) and how many bytes it took,
// user files (attachments) excluded. Shared by the portal's browser test
// (which checks the bytes) and its benchmark (which reports the times).

// One load first: the browser's own start-up (a new context's first
// paint) is not the page's. Then the median of `runs` loads: one load on
// a busy two-core machine can land on a scheduling hiccup.
export async function coldLoad(page, url, runs = 3) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await load(page, url);
  const all = [];
  for (let i = 0; i < runs; i++) all.push(await load(page, url));
  all.sort((a, b) => a.fcp_ms - b.fcp_ms);
  await cdp.detach();
  return all[Math.floor(runs / 2)];
}

async function load(page, url) {
  await page.goto(url, { waitUntil: "load" });
  await page.waitForTimeout(50);
  return await page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const paint = performance.getEntriesByName("first-contentful-paint")[0] || performance.getEntriesByName("first-paint")[0];
    const resources = performance.getEntriesByType("resource").filter((r) => !r.name.includes("/attachments/"));
    const bytes = nav.transferSize + resources.reduce((n, r) => n + r.transferSize, 0);
    return { fcp_ms: paint ? paint.startTime : nav.domContentLoadedEventEnd, bytes };
  });
}
