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

  function updateCallers(rows, emptyText) {
    var tbody = document.querySelector("#callers tbody");
    if (!tbody) { return; }
    var fresh = document.createElement("tbody");
    if (!rows.length) {
      var tr = el("tr", { "class": "empty" });
      tr.appendChild(el("td", { colspan: 8, "class": "muted" }, emptyText));
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
        st.appendChild(el("span", { "class": "coached small" }, c.coached_text));
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
  var coaching = null; // {session_id, mode, audio} once this captain coaches someone
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
      return resp.json().then(function (data) { return { ok: resp.ok, status: resp.status, data: data }; },
        function () { return { ok: false, status: resp.status, data: {} }; });  // a proxy's HTML error page
    });
  }

  /* One coach request at a time: a double-click would start a second coaching that ends the first while its
     account is still being made. The buttons come back when the answer (or the network error) does. */
  var coachBusy = false;
  function setCoachBusy(on) {
    coachBusy = on;
    var form = document.getElementById("coach-form");
    if (!form) { return; }
    Array.prototype.forEach.call(form.querySelectorAll("button"), function (b) { b.disabled = on; });
  }

  /* The coaching card's strings, translated in the page's JSON block (results/dashboard.html), keyed by the
     English; {name} is a value filled in here. */
  var coachStringsEl = document.getElementById("coach-strings");
  var COACH_STRINGS = coachStringsEl ? JSON.parse(coachStringsEl.textContent) : {};
  function tr(s, vars) {
    return (COACH_STRINGS[s] || s).replace(/\{(\w+)\}/g, function (m, k) {
      return vars && Object.prototype.hasOwnProperty.call(vars, k) ? String(vars[k]) : m;
    });
  }

  /* The captain's own leg from this browser (computer audio): JsSIP, the account the coach request made for
     this coaching alone. Listen / whisper / barge switches move this leg on the PBX: the call stays up. */
  var coachUa = null;
  var coachCall = null;
  var coachMic = null;
  var stopping = false;  // Stop pressed: the leg's end that follows is ours, not news
  function hangUpBrowser() {
    if (coachCall) { try { coachCall.terminate(); } catch (e) { /* already over */ } }
    coachCall = null;
    if (coachUa) { try { coachUa.stop(); } catch (e) { /* already stopped */ } }
    coachUa = null;
    if (coachMic) { coachMic.getTracks().forEach(function (t) { t.stop(); }); }
    coachMic = null;
  }
  function startBrowser(sip, mode) {
    if (typeof JsSIP === "undefined" || !navigator.mediaDevices) {
      coachStatus.textContent = tr("Computer audio is not available on this page.");
      return;
    }
    coachStatus.textContent = tr("Connecting this browser ({mode})…", { mode: tr(mode) });
    navigator.mediaDevices.getUserMedia({ audio: true, video: false }).then(function (stream) {
      coachMic = stream;
      var ua = new JsSIP.UA({
        sockets: [new JsSIP.WebSocketInterface(sip.ws_url)],
        uri: "sip:" + sip.username + "@" + sip.domain,
        authorization_user: sip.username,
        password: sip.password,
        register: false,  // the INVITE is challenged and authenticated: nothing to register for
        session_timers: false,
        user_agent: "phonebank-coach"
      });
      coachUa = ua;
      ua.on("connected", function () {
        if (coachUa !== ua || coachCall) { return; }
        var remote = document.getElementById("coach-audio");
        coachCall = ua.call("sip:" + sip.dial + "@" + sip.domain, {
          mediaStream: stream,
          pcConfig: { iceServers: sip.ice_servers || [], rtcpMuxPolicy: "require", bundlePolicy: "max-bundle" },
          rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
          eventHandlers: {
            peerconnection: function (e) {
              e.peerconnection.addEventListener("track", function (ev) {
                remote.srcObject = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
                var played = remote.play();
                if (played && played.catch) { played.catch(function () { /* the click allowed it */ }); }
              });
            },
            confirmed: function () {
              coachStatus.textContent = tr("Connected: you are on the call ({mode}).",
                { mode: tr(coaching ? coaching.mode : mode) });
            },
            ended: function (e) { browserEnded(ua, e.cause); },
            failed: function (e) { browserEnded(ua, e.cause); }
          }
        });
      });
      ua.start();
    }, function (err) {
      coachStatus.textContent = tr("This browser has no microphone to use: {error}", { error: err.name || err });
    });
  }
  function browserEnded(ua, cause) {
    if (coachUa !== ua || stopping) { return; }
    hangUpBrowser();
    coaching = null;  // the PBX ended the coaching with the leg
    coachStatus.textContent = tr("Your browser's audio ended ({cause}).", { cause: cause });
  }
  function showSoftphone(sip) {
    var box = document.getElementById("coach-softphone");
    if (!box) { return; }
    box.hidden = !sip;
    if (!sip) { return; }
    document.getElementById("coach-sip-server").textContent = sip.sip_server;
    document.getElementById("coach-sip-user").textContent = sip.username;
    document.getElementById("coach-sip-password").textContent = sip.password;
    document.getElementById("coach-sip-dial").textContent = sip.dial;
  }

  var coachForm = document.getElementById("coach-form");
  if (coachForm) {
    coachForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var mode = ev.submitter ? ev.submitter.value : "listen";
      var sid = coachSelect.value;
      var picked = coachForm.querySelector('input[name="audio"]:checked');
      var audio = picked ? picked.value : "phone";
      if (coachBusy) { return; }
      if (!sid) { coachStatus.textContent = tr("No caller is on the line."); return; }
      // Same caller, same audio: change the mode on the leg already there; else a new coaching (the old ends).
      var same = coaching && String(coaching.session_id) === sid && coaching.audio === audio;
      var body = same ? { mode: mode } : { session_id: Number(sid), mode: mode, audio: audio };
      if (!same) { hangUpBrowser(); showSoftphone(null); }
      setCoachBusy(true);
      coachPost(body).then(function (r) {
        setCoachBusy(false);
        if (!r.ok) { coachStatus.textContent = r.data.error || tr("Could not coach."); return; }
        if (r.data.coach_id) {
          coaching = { session_id: r.data.session_id, mode: r.data.mode, audio: audio };
          if (r.data.code) {
            coachStatus.textContent = tr("Call {number} and key {code} ({mode}). The code works once, for 5 minutes.",
              { number: r.data.callin_number, code: r.data.code, mode: tr(r.data.mode) });
          } else if (audio === "softphone") {
            showSoftphone(r.data.sip);
            coachStatus.textContent = tr("Set up your softphone with this login and call {dial} ({mode}). " +
              "The login works for this coaching only.", { dial: r.data.sip.dial, mode: tr(r.data.mode) });
          } else {
            startBrowser(r.data.sip, r.data.mode);
          }
        } else {
          coaching.mode = r.data.mode;
          coachStatus.textContent = tr("Now: {mode}.", { mode: tr(r.data.mode) });
        }
      }, function () {
        setCoachBusy(false);
        coachStatus.textContent = tr("Could not reach the server: try again.");
      });
    });
    document.getElementById("coach-stop").addEventListener("click", function () {
      // Stop on the server first: hanging up this browser's leg first would end the coaching on the PBX's
      // side, and the Stop would then find nothing to stop. The server hangs the leg up; this tidies after.
      if (coachBusy) { return; }
      stopping = true;
      showSoftphone(null);
      setCoachBusy(true);
      coachPost({ mode: "stop" }).then(function (r) {
        setCoachBusy(false);
        hangUpBrowser();
        stopping = false;
        var wasOn = coaching !== null;
        coaching = null;
        coachStatus.textContent = r.ok || (wasOn && r.status === 404) ? tr("Coaching ended.") : (r.data.error || "");
      }, function () {
        // Not known to have stopped: the leg stays, and its end (if the PBX ends it) is news again.
        setCoachBusy(false);
        stopping = false;
        coachStatus.textContent = tr("Could not reach the server: try again.");
      });
    });
    window.addEventListener("pagehide", hangUpBrowser);
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
    updateCallers(d.callers, d.callers_empty);
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
