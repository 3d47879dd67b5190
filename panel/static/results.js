/* The results dashboard, live: tiles, callers table and charts redrawn from the effort's WebSocket.
   The page is complete without this script (server-rendered first paint); this only keeps it current. */
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) { return; }
  var cid = root.getAttribute("data-cid");
  var SVG = "http://www.w3.org/2000/svg";
  var status = document.getElementById("live-status");
  var updated = document.getElementById("updated-at");
  var retry = 1000;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function withTitle(node, title) {
    if (title) {
      var t = document.createElementNS(SVG, "title");
      t.textContent = title;
      node.appendChild(t);
    }
    return node;
  }

  function drawChart(svg, spec) {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    svg.setAttribute("viewBox", "0 0 " + spec.w + " " + spec.h);
    spec.items.forEach(function (it) {
      var node;
      if (it.t === "rect") {
        node = svgEl("rect", { x: it.x, y: it.y, width: it.w, height: it.h, fill: it.fill });
      } else if (it.t === "line") {
        node = svgEl("line", { x1: it.x1, y1: it.y1, x2: it.x2, y2: it.y2, stroke: "#d9dde5", "stroke-width": 1 });
      } else {
        node = svgEl("text", { x: it.x, y: it.y, "text-anchor": it.anchor, "font-size": 12, fill: "#3b4352" });
        node.textContent = it.text;
      }
      svg.appendChild(withTitle(node, it.title));
    });
  }

  function drawLegend(ul, spec) {
    while (ul.firstChild) { ul.removeChild(ul.firstChild); }
    (spec.legend || []).forEach(function (l) {
      var li = el("li");
      var sw = svgEl("svg", { width: 12, height: 12, "aria-hidden": "true" });
      sw.appendChild(svgEl("rect", { width: 12, height: 12, rx: 2, fill: l.fill }));
      li.appendChild(sw);
      li.appendChild(document.createTextNode(" " + l.label));
      ul.appendChild(li);
    });
  }

  function updateTiles(tiles) {
    tiles.forEach(function (t) {
      var tile = document.getElementById("tile-" + t.id);
      if (!tile) { return; }
      tile.querySelector('[data-field="value"]').textContent = t.value;
      tile.querySelector('[data-field="sub"]').textContent = t.sub;
      tile.classList.toggle("alert", !!t.alert);
    });
  }

  function updateCallers(rows) {
    var tbody = document.querySelector("#callers tbody");
    if (!tbody) { return; }
    var fresh = document.createElement("tbody");
    if (!rows.length) {
      var tr = el("tr", { "class": "empty" });
      tr.appendChild(el("td", { colspan: 8, "class": "muted" }, "No callers have joined yet."));
      fresh.appendChild(tr);
    }
    rows.forEach(function (c) {
      var tr = el("tr");
      tr.appendChild(el("td", {}, c.name));
      var st = el("td");
      st.appendChild(el("span", { "class": "state state-" + c.state }, c.state_label));
      if (c.state_for) {
        st.appendChild(document.createTextNode(" "));
        st.appendChild(el("span", { "class": "muted small" }, c.state_for));
      }
      if (c.coached) {
        st.appendChild(document.createTextNode(" "));
        st.appendChild(el("span", { "class": "coached small" }, "coached: " + c.coached));
      }
      tr.appendChild(st);
      var rate = c.contacts_per_hour === null ? "\u2014" : Number(c.contacts_per_hour).toFixed(1);
      [c.calls, c.contacts, rate, c.talk, c.wrap, c.online].forEach(function (v) {
        tr.appendChild(el("td", { "class": "num" }, v));
      });
      fresh.appendChild(tr);
    });
    tbody.parentNode.replaceChild(fresh, tbody);
    updateCoachChoices(rows);
  }

  /* Coaching (captains, permission coach_callers): the callers on the line to pick from, and the actions. */
  var coachSelect = document.getElementById("coach-session");
  var coachStatus = document.getElementById("coach-status");
  var coaching = null; // {session_id, mode} once this captain has a code
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');

  function updateCoachChoices(rows) {
    if (!coachSelect) { return; }
    var keep = coachSelect.value;
    while (coachSelect.firstChild) { coachSelect.removeChild(coachSelect.firstChild); }
    rows.forEach(function (c) {
      if (c.session_id === null || c.session_id === undefined) { return; }
      var opt = el("option", { value: String(c.session_id) }, c.name);
      if (String(c.session_id) === keep) { opt.selected = true; }
      coachSelect.appendChild(opt);
    });
  }

  function coachPost(body) {
    return fetch("/api/efforts/" + encodeURIComponent(cid) + "/coach", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfMeta ? csrfMeta.content : "" },
      body: JSON.stringify(body)
    }).then(function (resp) {
      return resp.json().then(function (data) { return { ok: resp.ok, data: data }; });
    });
  }

  var coachForm = document.getElementById("coach-form");
  if (coachForm) {
    coachForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var mode = ev.submitter ? ev.submitter.value : "listen";
      var sid = coachSelect.value;
      if (!sid) { coachStatus.textContent = "No caller is on the line."; return; }
      // Same caller: change the mode on the line already open; another caller: a new code.
      var body = coaching && String(coaching.session_id) === sid ? { mode: mode } : { session_id: Number(sid), mode: mode };
      coachPost(body).then(function (r) {
        if (!r.ok) { coachStatus.textContent = r.data.error || "Could not coach."; return; }
        if (r.data.code) {
          coaching = { session_id: r.data.session_id, mode: r.data.mode };
          coachStatus.textContent = "Call " + r.data.callin_number + " and key " + r.data.code +
            " (" + r.data.mode + "). The code works once, for 5 minutes.";
        } else {
          coaching.mode = r.data.mode;
          coachStatus.textContent = "Now: " + r.data.mode + ".";
        }
      });
    });
    document.getElementById("coach-stop").addEventListener("click", function () {
      coachPost({ mode: "stop" }).then(function (r) {
        coaching = null;
        coachStatus.textContent = r.ok ? "Coaching ended." : (r.data.error || "");
      });
    });
  }

  function updateResults(charts) {
    var box = document.getElementById("results-charts");
    if (!box) { return; }
    var fresh = document.createDocumentFragment();
    charts.forEach(function (c, i) {
      var fig = el("figure", { "class": "result-chart" });
      fig.appendChild(el("figcaption", {}, c.title));
      var svg = svgEl("svg", { "class": "chart", "data-chart": "result-" + i, role: "img", "aria-label": c.title });
      drawChart(svg, c.spec);
      fig.appendChild(svg);
      fresh.appendChild(fig);
    });
    while (box.firstChild) { box.removeChild(box.firstChild); }
    box.appendChild(fresh);
  }

  function update(d) {
    if (!d || !d.tiles) { return; }
    updateTiles(d.tiles);
    updateCallers(d.callers);
    var a = document.querySelector('svg[data-chart="attempts"]');
    if (a) { drawChart(a, d.charts.attempts); }
    var l = document.querySelector('ul[data-legend="attempts"]');
    if (l) { drawLegend(l, d.charts.attempts); }
    var v = document.querySelector('svg[data-chart="volunteers"]');
    if (v) { drawChart(v, d.charts.volunteers); }
    updateResults(d.charts.results);
    var alert = document.getElementById("callin-alert");
    if (alert) {
      alert.textContent = d.callin_alert || "";
      alert.hidden = !d.callin_alert;
    }
    if (updated) { updated.textContent = d.updated; }
  }

  function setStatus(state) {
    if (status) { status.setAttribute("data-state", state); }
  }

  function connect() {
    var proto = window.location.protocol === "https:" ? "wss:" : "ws:";
    var ws = new WebSocket(proto + "//" + window.location.host + "/ws/campaign/" + encodeURIComponent(cid));
    ws.onopen = function () { retry = 1000; setStatus("live"); };
    ws.onmessage = function (ev) {
      var msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg.type === "dashboard") { update(msg.dashboard); }
    };
    ws.onclose = function () {
      setStatus("reconnecting");
      window.setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }

  connect();
}());
