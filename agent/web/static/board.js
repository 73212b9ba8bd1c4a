/* The workshop board: renders /board/data.json (agent/web/documents.py) and asks again every
   refresh_s seconds. Every word comes with the figures, in the site's language. */
(function () {
  "use strict";
  var main = document.getElementById("page");
  var L = {};
  var S = {};
  var offsetS = 0; // the gateway's clock minus this browser's
  var lastOk = Date.now();
  var refreshS = 5;
  var clockFormat = null;

  var P = window.EdgeAgentPage;
  var el = P.el, pct = P.pct;
  function num(v, digits) { return P.num(v, digits, true); }
  function duration(seconds) {
    if (seconds === null || seconds === undefined || seconds < 0) return "-";
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = Math.floor(seconds % 60);
    return h > 0 ? h + ":" + String(m).padStart(2, "0") + ":" + String(s).padStart(2, "0") : m + ":" + String(s).padStart(2, "0");
  }
  function nowS() { return Date.now() / 1000 + offsetS; }

  function figure(label, value, cls) {
    var box = el("div", "figure" + (cls ? " " + cls : ""));
    box.appendChild(el("span", "label", label));
    box.appendChild(el("span", "value", value));
    return box;
  }

  function totals(scope, cls) {
    var bar = el("div", "totals " + cls);
    bar.appendChild(figure(L.oee, pct(scope.oee), "oee"));
    bar.appendChild(figure(L.availability, pct(scope.availability)));
    bar.appendChild(figure(L.performance, pct(scope.performance)));
    bar.appendChild(figure(L.quality, pct(scope.quality)));
    bar.appendChild(figure(L.parts, num(scope.produced, 0)));
    bar.appendChild(figure(L.good, num(scope.good, 0)));
    bar.appendChild(figure(L.kwh_per_part, num(scope.kwh_per_unit, 4)));
    return bar;
  }

  function tile(m) {
    var box = el("article", "tile state-" + m.state);
    box.dataset.machine = m.id;
    box.dataset.state = m.state;
    var head = el("header");
    head.appendChild(el("h3", "name", m.name));
    var state = el("div", "state");
    state.appendChild(el("span", "state-name", S[m.state] || m.state));
    var since = el("span", "since", m.since ? L.for_duration + " " + duration(nowS() - m.since) : "");
    since.dataset.since = m.since || "";
    state.appendChild(since);
    head.appendChild(state);
    if (m.reason) head.appendChild(el("div", "reason", m.reason));
    box.appendChild(head);
    var kpis = el("div", "kpis");
    kpis.appendChild(figure(L.oee, pct(m.oee), "oee"));
    kpis.appendChild(figure(L.availability, pct(m.availability)));
    kpis.appendChild(figure(L.performance, pct(m.performance)));
    kpis.appendChild(figure(L.quality, pct(m.quality)));
    box.appendChild(kpis);
    var parts = el("div", "parts");
    parts.appendChild(figure(L.parts, num(m.produced, 0)));
    parts.appendChild(figure(L.good, num(m.good, 0)));
    parts.appendChild(figure(L.target, num(m.target, 0)));
    parts.appendChild(figure(L.kwh_per_part, num(m.kwh_per_unit, 4)));
    box.appendChild(parts);
    if (m.produced !== null && m.target) {
      var bar = el("div", "progress");
      var fill = el("div", "fill");
      fill.style.width = Math.min(100, (100 * m.produced) / m.target).toFixed(1) + "%";
      bar.appendChild(fill);
      box.appendChild(bar);
    }
    var stop = m.last_stop;
    box.appendChild(
      el("div", "last-stop", L.last_stop + ": " + (stop ? (S[stop.state] || stop.state) + (stop.reason ? " " + stop.reason : "") : "-"))
    );
    return box;
  }

  function render(doc) {
    var started = performance.now();
    L = doc.labels;
    S = doc.states;
    refreshS = doc.refresh_s || refreshS;
    offsetS = doc.now - Date.now() / 1000;
    document.documentElement.lang = doc.language;
    document.title = L.board_title;
    clockFormat = new Intl.DateTimeFormat(doc.language, {
      timeZone: doc.timezone, hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    });
    var page = document.createDocumentFragment();
    var top = el("header", "board-head");
    top.appendChild(el("h1", null, (doc.workshop_name ? doc.workshop_name + " " : "") + L.board_title));
    var shift = el("div", "shift");
    if (doc.shift) {
      shift.textContent = L.shift + ": " + doc.shift.name + (doc.shift.crew ? "  " + L.crew + ": " + doc.shift.crew : "");
    } else {
      shift.textContent = L.no_shift;
    }
    top.appendChild(shift);
    top.appendChild(el("div", "clock", clockFormat.format(new Date(doc.now * 1000))));
    top.appendChild(el("div", "stale hidden"));
    page.appendChild(top);
    var workshop = totals(doc.workshop, "workshop-totals");
    workshop.insertBefore(el("h2", null, L.workshop), workshop.firstChild);
    page.appendChild(workshop);
    doc.lines.forEach(function (line) {
      var section = el("section", "line");
      section.dataset.line = line.id;
      var head = totals(line, "line-totals");
      head.insertBefore(el("h2", null, line.name), head.firstChild);
      section.appendChild(head);
      var grid = el("div", "tiles");
      line.machines.forEach(function (m) { grid.appendChild(tile(m)); });
      section.appendChild(grid);
      page.appendChild(section);
    });
    main.replaceChildren(page);
    fit();
    main.dataset.renderMs = (performance.now() - started).toFixed(1);
    main.dataset.renders = String(Number(main.dataset.renders || 0) + 1);
  }

  /* A wall TV shows the whole workshop without scrolling: shrink the page to the screen's height,
     down to half size (a phone, and a workshop too large for that, scroll instead). */
  var MIN_ZOOM = 0.5;
  var TV_MIN_WIDTH = 1000;
  function fit() {
    main.style.zoom = "1";
    if (window.innerWidth < TV_MIN_WIDTH) return;
    var needed = main.scrollHeight;
    if (needed > window.innerHeight) {
      main.style.zoom = String(Math.max(MIN_ZOOM, (window.innerHeight - 4) / needed));
    }
    main.dataset.zoom = main.style.zoom;
  }
  window.addEventListener("resize", fit);

  function tick() {
    var now = nowS();
    main.querySelectorAll(".since").forEach(function (node) {
      if (node.dataset.since) node.textContent = L.for_duration + " " + duration(now - Number(node.dataset.since));
    });
    var clock = main.querySelector(".clock");
    if (clock && clockFormat) clock.textContent = clockFormat.format(new Date(now * 1000));
    var stale = main.querySelector(".stale");
    var quiet = Math.round((Date.now() - lastOk) / 1000);
    if (stale) {
      var late = quiet > 3 * refreshS;
      stale.classList.toggle("hidden", !late);
      if (late) stale.textContent = L.stale.replace("{seconds}", String(quiet));
    }
  }

  function load() {
    fetch(main.dataset.source, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.json();
      })
      .then(function (doc) { lastOk = Date.now(); render(doc); })
      .catch(function () { /* shown by the stale notice */ })
      .then(function () { setTimeout(load, refreshS * 1000); });
  }

  var embedded = P.embedded();
  if (embedded) {
    render(embedded);
  } else {
    load();
  }
  setInterval(tick, 1000);
})();
