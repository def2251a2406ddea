// medanchor portal: the few things a browser must do itself. Everything
// else is server-rendered HTML (htmx only enhances it). No build step, no
// third-party code besides htmx; CSP-clean (no eval, no inline handlers).
(function () {
  "use strict";
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // Offline indicator: the banner shows while the browser has no network
  // or a request could not be sent; forms keep what was typed.
  function setOffline(off) {
    const b = document.getElementById("offline");
    if (b) b.hidden = !off;
  }
  window.addEventListener("offline", () => setOffline(true));
  window.addEventListener("online", () => setOffline(false));
  document.addEventListener("htmx:sendError", () => setOffline(true));
  document.addEventListener("htmx:afterRequest", (e) => { if (e.detail.successful !== undefined && e.detail.xhr && e.detail.xhr.status) setOffline(false); });

  // Every htmx request carries the session's anti-forgery token.
  document.addEventListener("htmx:configRequest", (e) => { const t = csrf(); if (t) e.detail.headers["X-CSRF-Token"] = t; });

  function wire(root) {
    root.querySelectorAll(".toast").forEach((t) => setTimeout(() => t.classList.add("gone"), 6000));
    root.querySelectorAll("[data-back]").forEach((a) => a.addEventListener("click", (e) => {
      if (history.length > 1) { e.preventDefault(); history.back(); }
    }));
    root.querySelectorAll("form[data-wallet-signin]").forEach(walletSignIn);
    root.querySelectorAll("[data-wallet-sign]").forEach(walletCall);
    root.querySelectorAll("form[data-upload]").forEach(uploads);
    root.querySelectorAll("[data-scanner]").forEach(scanner);
    if (!navigator.onLine) setOffline(true);
  }
  document.addEventListener("DOMContentLoaded", () => wire(document));
  document.addEventListener("htmx:load", (e) => wire(e.detail.elt));

  // ---- Stacks wallets (Leather, Xverse: the @stacks/connect request API)
  function provider() {
    return window.LeatherProvider || window.StacksProvider || (window.XverseProviders && window.XverseProviders.StacksProvider) || null;
  }
  async function request(method, params) {
    const p = provider();
    if (!p) throw new Error("No Stacks wallet found in this browser. Install Leather or Xverse" + (document.querySelector('form[action="/sign-in/dev"]') ? ", or use the development wallet below." : "."));
    const r = await p.request(method, params);
    if (r && r.error) throw new Error(r.error.message || "the wallet refused");
    return r && r.result !== undefined ? r.result : r;
  }
  function post(action, fields) {
    const f = document.createElement("form");
    f.method = "post"; f.action = action; f.hidden = true;
    for (const [k, v] of Object.entries(fields)) { const i = document.createElement("input"); i.type = "hidden"; i.name = k; i.value = v; f.appendChild(i); }
    document.body.appendChild(f); f.submit();
  }
  function walletSignIn(form) {
    if (form.dataset.wired) return; form.dataset.wired = "1";
    const status = form.querySelector("#wallet-status");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        status.textContent = "Asking your wallet for its address…";
        const got = await request("getAddresses", { network: "testnet" }).catch(() => request("stx_getAddresses", {}));
        const list = (got && got.addresses) || [];
        const stx = list.find((a) => (a.symbol === "STX") || /^S[PTMN]/.test(a.address || ""));
        if (!stx) throw new Error("the wallet gave no Stacks address");
        const body = new URLSearchParams({ principal: stx.address });
        const tenant = form.querySelector('[name="tenant"]'); if (tenant) body.set("tenant", tenant.value);
        const r = await fetch("/sign-in/challenge", { method: "POST", body, credentials: "same-origin" });
        if (!r.ok) throw new Error("the node refused the address (" + r.status + ")");
        const div = new DOMParser().parseFromString(await r.text(), "text/html").getElementById("challenge");
        status.textContent = "Sign the message in your wallet…";
        const signed = await request("stx_signMessage", { message: div.dataset.message });
        post("/sign-in/verify", { nonce: div.dataset.nonce, signature: signed.signature, tenant: tenant ? tenant.value : "" });
      } catch (err) { status.textContent = "Not signed in: " + err.message; }
    });
  }
  function walletCall(button) {
    if (button.dataset.wired) return; button.dataset.wired = "1";
    const box = button.closest("[data-wallet-call]");
    const status = box.querySelector("#wallet-status");
    // Calls already signed survive a retry: a refused second prompt does
    // not send the first again.
    const txids = [];
    button.addEventListener("click", async () => {
      try {
        const calls = JSON.parse(box.dataset.walletCall);
        for (let i = txids.length; i < calls.length; i++) {
          status.textContent = `Waiting for your wallet (${i + 1} of ${calls.length})…`;
          const r = await request("stx_callContract", Object.assign({ network: "testnet" }, calls[i]));
          txids.push((r.txid || r.txId || "").replace(/^(0x)?/, "0x"));
        }
        if (box.dataset.done) post(box.dataset.done, { txids: txids.join(","), _csrf: csrf() });
        else location.assign("/tx/" + txids[txids.length - 1] + "?back=" + encodeURIComponent(box.dataset.back));
      } catch (err) { status.textContent = "Not sent: " + err.message + ". You can try again."; }
    });
  }

  // ---- Uploads through tus (resumable): per-file progress, cancel, retry.
  const CHUNK = 4 * 1024 * 1024;
  function b64(s) { return btoa(unescape(encodeURIComponent(s))); }
  function xhr(method, url, headers, body, onProgress) {
    const x = new XMLHttpRequest();
    const done = new Promise((resolve, reject) => {
      x.open(method, url);
      x.setRequestHeader("Tus-Resumable", "1.0.0");
      x.setRequestHeader("X-CSRF-Token", csrf());
      const tenant = document.querySelector('meta[name="tenant"]');
      if (tenant) x.setRequestHeader("X-Tenant-ID", tenant.content);
      for (const [k, v] of Object.entries(headers)) x.setRequestHeader(k, v);
      if (onProgress) x.upload.onprogress = (e) => onProgress(e.loaded);
      x.onload = () => resolve(x);
      x.onerror = () => reject(new Error("network error"));
      x.onabort = () => reject(new Error("cancelled"));
      x.send(body);
    });
    return { x, done };
  }
  function uploads(form) {
    if (form.dataset.wired) return; form.dataset.wired = "1";
    const list = form.querySelector("ul.progress");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const files = form.querySelector('input[type="file"]').files;
      const jobs = Array.from(files).map((f) => upload(form.dataset.upload, f, list));
      Promise.allSettled(jobs).then((r) => { if (r.length && r.every((x) => x.status === "fulfilled" && x.value)) location.reload(); });
    });
  }
  function upload(createUrl, file, list) {
    const li = document.createElement("li");
    const label = document.createElement("span"); label.textContent = file.name;
    const bar = document.createElement("progress"); bar.max = file.size || 1; bar.value = 0; bar.setAttribute("aria-label", "Upload of " + file.name);
    const state = document.createElement("span"); state.textContent = "starting";
    const cancel = document.createElement("button"); cancel.type = "button"; cancel.textContent = "Cancel";
    const retry = document.createElement("button"); retry.type = "button"; retry.textContent = "Retry"; retry.hidden = true;
    li.append(label, bar, state, cancel, retry); list.appendChild(li);
    let location = null, current = null, cancelled = false;
    return new Promise((resolve) => {
      async function run() {
        retry.hidden = true; cancel.hidden = false;
        try {
          if (!location) {
            const c = xhr("POST", createUrl, { "Upload-Length": String(file.size), "Upload-Metadata": "filename " + b64(file.name) + ",filetype " + b64(file.type || "application/octet-stream") }, null);
            current = c; const r = await c.done;
            if (r.status !== 201) throw new Error(problem(r));
            location = r.getResponseHeader("Location");
          }
          const h = xhr("HEAD", location, {}, null); current = h; const s = await h.done;
          if (s.status !== 200 && s.status !== 204) throw new Error(problem(s));
          let offset = Number(s.getResponseHeader("Upload-Offset") || 0);
          while (offset < file.size) {
            const piece = file.slice(offset, offset + CHUNK);
            const p = xhr("PATCH", location, { "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" }, piece, (n) => { bar.value = offset + n; state.textContent = Math.round(100 * (offset + n) / file.size) + "%"; });
            current = p; const r = await p.done;
            if (r.status !== 204) throw new Error(problem(r));
            offset = Number(r.getResponseHeader("Upload-Offset"));
          }
          bar.value = bar.max; state.textContent = "done"; cancel.hidden = true; resolve(true);
        } catch (err) {
          if (cancelled) return;
          state.textContent = "stopped: " + err.message; retry.hidden = false;
        }
      }
      cancel.addEventListener("click", async () => {
        cancelled = true; if (current) current.x.abort();
        if (location) await xhr("DELETE", location, {}, null).done.catch(() => {});
        state.textContent = "cancelled"; cancel.hidden = true; retry.hidden = true; resolve(false);
      });
      retry.addEventListener("click", () => { cancelled = false; run(); });
      run();
    });
  }
  function problem(r) {
    try { const p = JSON.parse(r.responseText); return p.detail || p.title || ("HTTP " + r.status); } catch (_) { return "HTTP " + r.status; }
  }

  // ---- QR scanning with the camera (BarcodeDetector where the browser has it).
  function scanner(box) {
    if (box.dataset.wired || !("BarcodeDetector" in window) || !navigator.mediaDevices) return;
    box.dataset.wired = "1"; box.hidden = false;
    const video = box.querySelector("video"), status = box.querySelector("#scan-status");
    box.querySelector("[data-scan]").addEventListener("click", async () => {
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
        video.srcObject = stream; await video.play();
        const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
        status.textContent = "Point the camera at the patient's QR code.";
        const tick = async () => {
          const codes = await detector.detect(video).catch(() => []);
          if (codes.length) {
            stream.getTracks().forEach((t) => t.stop());
            post("/provider/redeem", { link: codes[0].rawValue, _csrf: csrf() });
            return;
          }
          requestAnimationFrame(tick);
        };
        tick();
      } catch (err) { status.textContent = "The camera is not available: " + err.message + ". Type the code instead."; }
    });
  }
})();
