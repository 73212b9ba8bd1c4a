/* Shift, day and month reports: renders the report's JSON (agent/web/documents.py) with Apache
   ECharts (vendored, agent/web/static/vendor). Served, the figures come from data-source; as a
   file (edge-agent report --output) they are in the page's JSON data block. */
(function () {
  "use strict";
  var main = document.getElementById("page");
  var COLORS = {
    producing: "#2e9d4b", setup: "#3b7dd8", idle: "#e0b000", fault: "#d43b2f",
    planned_stop: "#9aa0a6", no_shift: "#c7cbd1", offline: "#5f6368", unknown: "#5f6368",
  };
  var LOSSES = [
    ["setup_s", "loss_setup", "#3b7dd8"], ["idle_s", "loss_idle", "#e0b000"], ["fault_s", "loss_fault", "#d43b2f"],
    ["speed_s", "loss_speed", "#f08c2e"], ["quality_s", "loss_quality", "#9b59b6"], ["valuable_s", "loss_valuable", "#2e9d4b"],
  ];
  var L = {}, S = {}, timeFormat = null, dayFormat = null;

  var P = window.EdgeAgentPage;
  var el = P.el, pct = P.pct, num = P.num;
  function minutes(s) { return num(s / 60, 1); }
  function time(ts) { return timeFormat.format(new Date(ts * 1000)); }
  function chart(id, height, option) {
    var box = el("div", "chart");
    box.id = id;
    box.style.height = height + "px";
    main.appendChild(box);
    var instance = echarts.init(box, null, { renderer: "svg" });
    option.animation = false;
    instance.setOption(option);
    window.addEventListener("resize", function () { instance.resize(); });
    return instance;
  }
  function table(id, headers, rows) {
    var t = el("table", "data");
    t.id = id;
    var head = el("tr");
    headers.forEach(function (h) { head.appendChild(el("th", null, h)); });
    t.appendChild(el("thead")).appendChild(head);
    var body = el("tbody");
    rows.forEach(function (row) {
      var tr = el("tr");
      Object.keys(row.data || {}).forEach(function (k) { tr.dataset[k] = row.data[k]; });
      row.cells.forEach(function (c) {
        var td = el("td", null, c.text);
        if (c.key) td.dataset.key = c.key;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    t.appendChild(body);
    main.appendChild(t);
    return t;
  }
  function heading(text) { main.appendChild(el("h2", null, text)); }

  function summary(report) {
    heading(L.summary);
    var carbon = report.workshop && report.workshop.carbon_gas === "co2e" ? ["co2e_kg", "co2e_per_unit"] : ["carbon_kg", "carbon_per_unit"];
    var headers = [L.machine, L.oee, L.availability, L.performance, L.quality, L.produced, L.good_parts, L.kwh,
      L.kwh_per_unit, L.kwh_per_good, L.kgce_per_unit, L[carbon[0]], L[carbon[1]]];
    var rows = [];
    function row(f, kind, name) {
      rows.push({
        data: { scope: f.scope, kind: kind },
        cells: [
          { text: name }, { key: "oee", text: pct(f.oee) }, { key: "availability", text: pct(f.availability) },
          { key: "performance", text: pct(f.performance) }, { key: "quality", text: pct(f.quality) },
          { key: "produced", text: num(f.produced, 0) }, { key: "good", text: num(f.good, 0) },
          { key: "kwh", text: num(f.kwh, 3) }, { key: "kwh_per_unit", text: num(f.kwh_per_unit, 6) },
          { key: "kwh_per_good", text: num(f.kwh_per_good, 6) }, { key: "kgce_per_unit", text: num(f.kgce_per_unit, 6) },
          { key: "carbon_kg", text: num(f.carbon_kg, 3) }, { key: "carbon_kg_per_unit", text: num(f.carbon_kg_per_unit, 6) },
        ],
      });
    }
    if (report.workshop) row(report.workshop, "workshop", report.workshop.name || L.workshop);
    report.lines.forEach(function (f) { row(f, "line", L.line + " " + f.name); });
    report.machines.forEach(function (f) { row(f, "machine", f.name); });
    table("summary", headers, rows);
  }

  function timeline(report) {
    heading(L.timeline);
    var machines = report.machines.map(function (m) { return m.scope; });
    var names = report.machines.map(function (m) { return m.name; });
    var data = [];
    machines.forEach(function (id, index) {
      (report.timelines[id] || []).forEach(function (span) {  /* [state, start, end, reason] */
        data.push({ value: [index, span[1] * 1000, span[2] * 1000, span[0], span[3] || ""], itemStyle: { color: COLORS[span[0]] || "#5f6368" } });
      });
    });
    (report.planned_stops || []).forEach(function (stop) {
      data.push({ value: [-1, stop[0] * 1000, stop[1] * 1000, "planned_stop", ""], itemStyle: { color: COLORS.planned_stop } });
    });
    chart("timeline", 60 + 34 * (machines.length + 1), {
      tooltip: { formatter: function (p) { return names[p.value[0]] + ": " + (S[p.value[3]] || p.value[3]) + " " + time(p.value[1] / 1000) + "-" + time(p.value[2] / 1000) + (p.value[4] ? " " + p.value[4] : ""); } },
      grid: { left: 120, right: 24, top: 10, bottom: 30 },
      xAxis: { type: "time", min: report.start * 1000, max: report.end * 1000, axisLabel: { formatter: function (v) { return time(v / 1000); } } },
      yAxis: { type: "category", data: names.concat([L.planned_stop]).map(String), inverse: true },
      series: [{
        type: "custom", encode: { x: [1, 2], y: 0 }, data: data,
        renderItem: function (params, api) {
          var row = api.value(0) < 0 ? machines.length : api.value(0);
          var start = api.coord([api.value(1), row]);
          var end = api.coord([api.value(2), row]);
          var height = api.size([0, 1])[1] * 0.7;
          return { type: "rect", shape: { x: start[0], y: start[1] - height / 2, width: Math.max(1, end[0] - start[0]), height: height }, style: api.style() };
        },
      }],
    });
    var legend = el("div", "legend");
    ["producing", "setup", "idle", "fault", "offline", "planned_stop"].forEach(function (state) {
      var item = el("span", "key state-" + state, S[state]);
      legend.appendChild(item);
    });
    main.appendChild(legend);
  }

  function losses(report) {
    heading(L.losses);
    main.appendChild(el("p", "hint", L.losses_hint));
    var scopes = report.machines.filter(function (m) { return m.losses; });
    chart("losses", 60 + 30 * scopes.length, {
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0 },
      grid: { left: 120, right: 24, top: 30, bottom: 30 },
      xAxis: { type: "value", name: L.hours },
      yAxis: { type: "category", data: scopes.map(function (m) { return m.name; }), inverse: true },
      series: LOSSES.map(function (loss) {
        return { name: L[loss[1]], type: "bar", stack: "pbt", itemStyle: { color: loss[2] },
          data: scopes.map(function (m) { return Number((m.losses[loss[0]] / 3600).toFixed(3)); }) };
      }),
    });
    var headers = [L.machine].concat(LOSSES.map(function (l) { return L[l[1]] + " " + L.minutes; })).concat([L.micro_stops]);
    var all = (report.workshop && report.workshop.losses ? [report.workshop] : []).concat(scopes);
    table("losses-table", headers, all.map(function (m) {
      return {
        data: { scope: m.scope },
        cells: [{ text: m.scope ? m.name : m.name || L.workshop }]
          .concat(LOSSES.map(function (l) { return { key: l[0], text: minutes(m.losses[l[0]]) }; }))
          .concat([{ key: "micro_stops", text: L.micro_stops_count.replace("{count}", m.losses.micro_stops).replace("{minutes}", minutes(m.losses.micro_stop_s)) }]),
      };
    }));
  }

  function pareto(report) {
    heading(L.pareto);
    var items = report.pareto;
    var label = function (r) { return r.reason || (S[r.state] + " " + L.no_reason); };
    chart("pareto", 320, {
      tooltip: { trigger: "axis" },
      grid: { left: 60, right: 60, top: 20, bottom: 90 },
      xAxis: { type: "category", data: items.map(label), axisLabel: { interval: 0, rotate: 25, width: 140, overflow: "truncate" } },
      yAxis: [{ type: "value", name: L.minutes }, { type: "value", max: 100, name: L.cumulative, axisLabel: { formatter: "{value}%" } }],
      series: [
        { type: "bar", name: L.minutes, data: items.map(function (r) { return { value: Number((r.seconds / 60).toFixed(1)), itemStyle: { color: COLORS[r.state] } }; }) },
        { type: "line", name: L.cumulative, yAxisIndex: 1, data: items.map(function (r) { return Number((r.cumulative * 100).toFixed(1)); }) },
      ],
    });
    table("pareto-table", [L.reason, L.state, L.machines, L.minutes, L.stops, L.share, L.cumulative], items.map(function (r) {
      return {
        data: { state: r.state },
        cells: [{ key: "reason", text: label(r) }, { key: "state", text: S[r.state] }, { key: "machines", text: r.machines.join(", ") },
          { key: "minutes", text: minutes(r.seconds) }, { key: "stops", text: r.count }, { key: "share", text: pct(r.share) },
          { key: "cumulative", text: pct(r.cumulative) }],
      };
    }));
  }

  function month(report) {
    var series = report.machines.concat(report.lines);
    chart("month", 360, {
      tooltip: { trigger: "axis" },
      legend: { type: "scroll", top: 0 },
      grid: { left: 70, right: 24, top: 40, bottom: 40 },
      xAxis: { type: "category", data: report.days },
      yAxis: { type: "value", name: L.kwh_per_unit },
      series: series.map(function (s) {
        return { type: "line", name: s.name, connectNulls: false, data: s.days.map(function (d) { return d.kwh_per_unit; }) };
      }),
    });
    table("month-table", [L.machine, L.kwh, L.produced, L.kwh_per_unit], series.map(function (s) {
      return {
        data: { scope: s.scope },
        cells: [{ text: s.name }, { key: "kwh", text: num(s.kwh, 3) }, { key: "produced", text: num(s.produced, 0) },
          { key: "kwh_per_unit", text: num(s.kwh_per_unit, 6) }],
      };
    }));
    /* day by day: a row per day, a column per machine and line (kWh per part) */
    heading(L.days);
    var days = table("month-days", [L.days].concat(series.map(function (s) { return s.name; })), report.days.map(function (day, index) {
      return {
        data: { day: day },
        cells: [{ text: day }].concat(series.map(function (s) { return { key: s.scope, text: num(s.days[index].kwh_per_unit, 6) }; })),
      };
    }));
    var scroller = el("div", "wide");
    main.insertBefore(scroller, days);
    scroller.appendChild(days);
  }

  function index(report) {
    main.appendChild(el("h1", null, L.reports));
    [[L.shift_report, report.shifts.map(function (s) { return ["/reports/shift/" + s[0] + "/" + s[1], s[0] + " " + s[1]]; })],
     [L.day_report, report.days.map(function (d) { return ["/reports/day/" + d, d]; })],
     [L.month_report, report.months.map(function (m) { return ["/reports/month/" + m, m]; })]].forEach(function (group) {
      heading(group[0]);
      var list = el("ul", "index");
      group[1].forEach(function (item) {
        var link = el("a", null, item[1]);
        link.href = encodeURI(item[0]);
        list.appendChild(el("li")).appendChild(link);
      });
      main.appendChild(list);
    });
    if (!report.shifts.length) main.appendChild(el("p", "empty", L.no_records));
  }

  function render(doc) {
    L = doc.labels;
    S = doc.states;
    document.documentElement.lang = doc.language;
    timeFormat = new Intl.DateTimeFormat(doc.language, { timeZone: doc.timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    dayFormat = new Intl.DateTimeFormat(doc.language, { timeZone: doc.timezone, dateStyle: "medium", timeStyle: "short", hourCycle: "h23" });
    var report = doc.report;
    if (doc.kind === "index") {
      document.title = L.reports;
      main.replaceChildren();
      index(report);
      main.dataset.ready = "1";
      return;
    }
    var title = doc.kind === "month" ? L.month_report + " " + report.month
      : (doc.kind === "shift" ? L.shift_report : L.day_report) + " " + report.day + (report.shift_name ? " " + report.shift_name : report.shift ? " " + report.shift : "") + (report.final || !report.machines.length ? "" : " " + L.so_far);
    document.title = title;
    main.replaceChildren();
    main.appendChild(el("h1", null, title));
    if (doc.kind !== "month") {
      var meta = el("p", "meta", L.from + " " + dayFormat.format(new Date(report.start * 1000)) + "  " + L.to + " " + dayFormat.format(new Date(report.end * 1000)) + (report.crew_name || report.crew ? "  " + L.crew + ": " + (report.crew_name || report.crew) : ""));
      main.appendChild(meta);
      if (!report.machines.length) main.appendChild(el("p", "empty", L.no_records));
      else if (doc.kind === "day" && !report.workshop) main.appendChild(el("p", "hint", L.day_open));
      summary(report);
      timeline(report);
      losses(report);
      pareto(report);
    } else {
      if (!report.days.length) main.appendChild(el("p", "empty", L.no_records));
      month(report);
    }
    main.appendChild(el("p", "hint print-hidden", L.print_hint));
    main.appendChild(el("p", "generated", L.generated.replace("{time}", dayFormat.format(new Date())).replace("{agent}", doc.agent)));
    main.dataset.ready = "1";
  }

  var embedded = P.embedded();
  if (embedded) {
    render(embedded);
  } else {
    fetch(main.dataset.source, { cache: "no-store", credentials: "same-origin" })
      .then(function (response) {
        if (response.ok) return response.json();
        return response.text().then(function (text) { throw new Error(text || String(response.status)); });
      })
      .then(render)
      .catch(function (error) { main.replaceChildren(el("p", "empty", error.message)); main.dataset.ready = "error"; });
  }
})();
