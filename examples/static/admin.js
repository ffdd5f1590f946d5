// The emergency admin console: live state every 500 ms, one button per operator action.
// Rows are created once and updated in place, so what an operator types survives the refresh.
"use strict";

(() => {
  const KEY = "breaker-admin-token";
  const $ = (id) => document.getElementById(id);
  const tokenField = $("token");
  const live = $("live");
  const status = $("admin-status");
  const tbody = document.querySelector("#breakers tbody");
  const template = $("breaker-row");

  tokenField.value = sessionStorage.getItem(KEY) || "";

  function saveToken() {
    sessionStorage.setItem(KEY, tokenField.value.trim());
    refresh();
  }
  tokenField.addEventListener("change", saveToken);
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    saveToken();
  });

  const token = () => sessionStorage.getItem(KEY) || "";

  async function api(method, path, body) {
    const init = { method, headers: { Authorization: "Bearer " + token(), Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (_) { /* no body */ }
    if (!res.ok) {
      const message = (data && data.error) || "HTTP " + res.status;
      throw new Error(res.status === 401 ? "401: " + message : message);
    }
    return data;
  }

  function set(el, text) {
    const t = text === null || text === undefined ? "" : String(text);
    if (el.textContent !== t) el.textContent = t;
  }

  function row(name) {
    let tr = tbody.querySelector('tr[data-breaker="' + CSS.escape(name) + '"]');
    if (!tr) {
      tr = template.content.firstElementChild.cloneNode(true);
      tr.dataset.breaker = name;
      tr.querySelector(".name").textContent = name;
      tbody.append(tr);
    }
    return tr;
  }

  function paintBreakers(list) {
    for (const b of list) {
      const tr = row(b.name);
      const state = tr.querySelector(".state");
      set(state, b.state);
      state.className = "state " + b.state.toLowerCase();
      set(tr.querySelector(".retry"), b.retry_after_ms ? " " + (b.retry_after_ms / 1000).toFixed(1) + "s" : "");
      set(tr.querySelector(".forced"), b.forced || "–");
      set(tr.querySelector(".swapped"), b.swapped ? "yes · " + (b.fallback || "") + " first" + (b.shadow ? " (dormant)" : "") : "no");
      const mode = tr.querySelector(".mode");
      set(mode, (b.shadow ? "shadow" : "enforce") + (b.shadow_override === null ? "" : " (operator)"));
      mode.className = "mode " + (b.shadow ? "shadow" : "enforce");
      const left = b.fault_ms_left ? " (" + Math.ceil(b.fault_ms_left / 1000) + "s)" : "";
      set(tr.querySelector(".fault"), b.fault ? b.fault + left : "–");
      set(tr.querySelector(".notice"), b.notice || "–");
      const c = b.counters;
      set(tr.querySelector(".calls"), c.calls);
      set(tr.querySelector(".failures"), c.failures + (c.timeouts ? " (" + c.timeouts + " timeouts)" : ""));
      set(tr.querySelector(".rejections"), c.rejections);
      set(tr.querySelector(".fallbacks"), c.fallbacks);
      set(tr.querySelector(".shadow-rejections"), c.shadow_rejections);
      const bh = b.bulkhead;
      set(tr.querySelector(".bulkhead"), bh ? bh.in_flight + " / " + bh.max_concurrent : "–");
      tr.classList.toggle("alert", b.state !== "CLOSED" || !!b.forced);
    }
  }

  function paintProviders(list) {
    for (const p of list) {
      const tr = document.querySelector('#providers tr[data-provider="' + CSS.escape(p.name) + '"]');
      if (!tr) continue;
      set(tr.querySelector(".url"), p.url);
      const mode = tr.querySelector(".mode");
      set(mode, p.mode || "?");
      mode.className = "mode " + (p.mode || "unknown");
      mode.title = p.error || "";
    }
  }

  let busy = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      if (!token()) {
        set(live, "토큰을 입력하세요 · Enter the token");
        return;
      }
      const [breakers, providers] = await Promise.all([
        api("GET", "/api/admin/breakers"),
        api("GET", "/api/admin/providers"),
      ]);
      paintBreakers(breakers);
      paintProviders(providers);
      live.className = "live ok";
      set(live, "실시간 · live " + new Date().toLocaleTimeString());
    } catch (e) {
      live.className = "live bad";
      set(live, e.message.startsWith("401") ? "토큰이 틀렸습니다 · Wrong or missing token" : "연결 끊김 · " + e.message);
    } finally {
      busy = false;
    }
  }

  function report(ok, text) {
    status.className = "status " + (ok ? "ok" : "bad");
    status.textContent = (ok ? "✔ " : "✘ error: ") + text;
  }

  async function breakerAction(tr, action) {
    const name = tr.dataset.breaker;
    const path = "/api/admin/breakers/" + encodeURIComponent(name) + "/";
    switch (action) {
      case "inject":
        return api("POST", path + "inject", {
          fault: tr.querySelector(".fault").value,
          for: tr.querySelector(".duration").value.trim() || null,
        });
      case "clear-fault":
        return api("POST", path + "inject", { fault: null });
      case "notice":
        return api("POST", path + "notice", { text: tr.querySelector(".notice-text").value });
      case "clear-notice":
        return api("POST", path + "notice", { text: null });
      case "shadow-on":
        return api("POST", path + "shadow", { shadow: true });
      case "enforce":
        return api("POST", path + "shadow", { shadow: false });
      case "declared-mode":
        return api("POST", path + "shadow", { shadow: null });
      default:
        return api("POST", path + action);
    }
  }

  document.addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-action], button[data-mode]");
    if (!button) return;
    try {
      let reply;
      if (button.dataset.action) {
        reply = await breakerAction(button.closest("tr[data-breaker]"), button.dataset.action);
        paintBreakers([reply.breaker]);
      } else {
        const tr = button.closest("tr[data-provider]");
        const delay = parseInt(tr.querySelector(".delay").value, 10);
        const body = { mode: button.dataset.mode };
        if (Number.isFinite(delay)) body.delay_ms = delay;
        reply = await api("POST", "/api/admin/providers/" + encodeURIComponent(tr.dataset.provider), body);
        paintProviders([{ name: reply.provider, url: tr.querySelector(".url").textContent, mode: reply.mode }]);
      }
      report(true, reply.message);
    } catch (err) {
      report(false, err.message);
    }
  });

  refresh();
  setInterval(refresh, 500);
})();
