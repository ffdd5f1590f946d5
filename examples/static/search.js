// The search page: GET /api/search?q=..., then results, provider and banner.
// Everything user-visible is set through textContent (never innerHTML).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const form = $("search-form");
  const input = $("q");
  const button = $("search");
  const results = $("results");
  const source = $("source");
  const count = $("count");
  const banner = $("banner");
  const error = $("error");
  const picked = $("picked");
  const pickedText = $("picked-text");
  // Only the latest search may paint the page.
  let latest = 0;

  function show(el, text) {
    el.textContent = text;
    el.hidden = false;
  }

  function hide(el) {
    el.textContent = "";
    el.hidden = true;
  }

  function line(cls, text) {
    const el = document.createElement("span");
    el.className = cls;
    el.textContent = text;
    return el;
  }

  function render(body) {
    source.textContent = body.provider || (body.notice ? "안내 · notice" : "–");
    source.dataset.provider = body.provider || "none";
    if (body.notice) {
      banner.className = "banner notice";
      show(banner, body.notice);
    } else if (body.degraded) {
      banner.className = "banner degraded";
      show(banner, "예비 제공자로 검색 중입니다 · Search runs on the backup provider (" + (body.provider || "juso") + ")");
    } else {
      hide(banner);
    }
    const items = body.addresses.map((a) => {
      const li = document.createElement("li");
      li.className = "address";
      li.tabIndex = 0;
      const zip = line("zip", a.zip);
      const main = document.createElement("div");
      main.className = "lines";
      const road = line("road", a.road);
      if (a.building) road.append(" ", line("building", a.building));
      const jibun = document.createElement("span");
      jibun.className = "jibun";
      jibun.append(line("tag", "지번"), " " + a.jibun);
      main.append(road, jibun);
      li.append(zip, main);
      li.addEventListener("click", () => pick(a));
      li.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(a); });
      return li;
    });
    if (items.length === 0 && !body.notice) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "검색 결과가 없습니다 · No address found";
      items.push(li);
    }
    results.replaceChildren(...items);
    count.textContent = body.addresses.length ? body.addresses.length + "건 · found" : "";
  }

  function pick(a) {
    pickedText.textContent = "(" + a.zip + ") " + a.road + (a.building ? " " + a.building : "");
    picked.hidden = false;
  }

  async function search() {
    const q = input.value.trim();
    const mine = ++latest;
    hide(error);
    // Not disabled while busy: a new search simply supersedes the one in flight.
    button.classList.add("busy");
    try {
      let res;
      try {
        res = await fetch("/api/search?q=" + encodeURIComponent(q), { headers: { Accept: "application/json" } });
      } catch (_) {
        if (mine === latest) show(error, "서버에 연결할 수 없습니다 · Cannot reach the server");
        return;
      }
      let body = null;
      try { body = await res.json(); } catch (_) { /* shown below */ }
      if (mine !== latest) return;
      if (!res.ok || !body) {
        show(error, (body && body.error) || "검색하지 못했습니다 · Search failed (HTTP " + res.status + ")");
        return;
      }
      render(body);
    } finally {
      if (mine === latest) button.classList.remove("busy");
    }
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    search();
  });
  // `/?q=...` searches at once (links from other pages, bookmarks).
  const initial = new URLSearchParams(location.search).get("q");
  if (initial) {
    input.value = initial;
    search();
  }
  for (const chip of document.querySelectorAll("[data-example]")) {
    chip.addEventListener("click", () => {
      input.value = chip.dataset.example;
      search();
    });
  }
})();
