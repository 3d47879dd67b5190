/* The caller's screen: one page driven by the session's WebSocket (no polling, no reloads).
 *
 * Contact data is only ever put into the page as text (textContent / text nodes), never as HTML.
 * The server sends the voter's phone number only for personal-phone efforts; this script adds none.
 */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  // The page's language: the template hands this script its own strings translated (caller/_js_strings.html),
  // keyed by the English; {name} marks a value filled in here. No string there: the English as written.
  const stringsEl = $("caller-strings");
  const STRINGS = stringsEl ? JSON.parse(stringsEl.textContent) : {};
  const t = (s, vars) => (STRINGS[s] || s).replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));

  // ------------------------------------------------------------------ copy buttons (your login page)
  document.querySelectorAll("button.copy[data-copy]").forEach((btn) => {
    btn.addEventListener("click", async () => {
      const el = $(btn.dataset.copy);
      if (!el) return;
      const text = el.textContent.trim();
      try {
        await navigator.clipboard.writeText(text);
      } catch (e) {
        const range = document.createRange();
        range.selectNodeContents(el);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      }
      const was = btn.textContent;
      btn.textContent = t("Copied");
      setTimeout(() => { btn.textContent = was; }, 1500);
    });
  });

  const cfgEl = $("caller-config");
  if (!cfgEl) return;
  const cfg = JSON.parse(cfgEl.textContent);
  const sid = cfg.session_id;
  const personal = !!cfg.personal;
  const computerAudio = cfg.audio === "computer";  // the leg is this browser (webphone.js), not a phone
  // Server clock minus ours (wrap-up times are the server's). Under 2 s it is mostly page-load time: ignore it.
  const rawSkew = cfg.server_now - Date.now() / 1000;
  const skew = Math.abs(rawSkew) > 2 ? rawSkew : 0;
  const codes = {};
  (cfg.dispositions || []).forEach((d) => { codes[d.code] = d; });

  // ------------------------------------------------------------------ helpers
  function show(id, on) {
    const el = $(id);
    if (el) el.hidden = !on;
  }

  function setError(id, message) {
    const el = $(id);
    if (!el) return;
    el.textContent = message || "";
    el.hidden = !message;
  }

  async function request(method, path, body) {
    const opts = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (method !== "GET") {
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-CSRF-Token"] = csrf;
      opts.body = JSON.stringify(body || {});
    }
    const resp = await fetch(path, opts);
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      if (resp.status === 401) throw new Error(t("Your login has expired: log in again."));
      throw new Error((data && data.error) || t("The server said {status}", { status: resp.status }));
    }
    return data;
  }
  const post = (path, body) => request("POST", path, body);

  // ------------------------------------------------------------------ the beep (WebAudio, no file)
  let audioCtx = null;
  function unlockAudio() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    if (!audioCtx) audioCtx = new Ctx();
    if (audioCtx.state === "suspended") audioCtx.resume();
  }
  document.addEventListener("click", unlockAudio, { capture: true });
  function beep() {
    try {
      unlockAudio();
      if (!audioCtx) return;
      const osc = audioCtx.createOscillator();
      const gain = audioCtx.createGain();
      osc.type = "sine";
      osc.frequency.value = 440;
      gain.gain.value = 0.2;
      osc.connect(gain);
      gain.connect(audioCtx.destination);
      const t = audioCtx.currentTime;
      osc.start(t);
      osc.stop(t + 0.25);
    } catch (e) { /* no audio: the screen still changes */ }
  }

  // ------------------------------------------------------------------ survey (with branching)
  const survey = cfg.survey || [];
  const surveyBox = $("survey");
  const qNodes = {};

  function buildSurvey() {
    if (!surveyBox) return;
    survey.forEach((q, i) => {
      const wrap = document.createElement("div");
      wrap.className = "question";
      wrap.dataset.qid = q.id;
      const inputId = "q-" + i;
      const title = document.createElement(q.kind === "choice" ? "p" : "label");
      title.className = "q-text";
      const titleText = document.createElement("span");
      titleText.textContent = q.text;
      title.appendChild(titleText);
      const untranslated = document.createElement("small");
      untranslated.className = "untranslated";
      untranslated.hidden = true;
      title.appendChild(untranslated);
      if (q.kind !== "choice") title.htmlFor = inputId;
      wrap.appendChild(title);
      const optionLabels = [];  // the nodes showing each option's label, relabelled when the language changes
      let field;
      if (q.kind === "dropdown") {
        field = document.createElement("select");
        field.id = inputId;
        const blank = document.createElement("option");
        blank.value = "";
        blank.textContent = "—";
        field.appendChild(blank);
        (q.options || []).forEach((opt) => {
          const o = document.createElement("option");
          o.value = String(opt);
          o.textContent = String(opt);
          optionLabels.push(o);
          field.appendChild(o);
        });
        wrap.appendChild(field);
      } else if (q.kind === "choice") {
        field = document.createElement("div");
        field.className = "choices";
        field.setAttribute("role", "radiogroup");
        (q.options || []).forEach((opt, j) => {
          const lab = document.createElement("label");
          lab.className = "check";
          const r = document.createElement("input");
          r.type = "radio";
          r.name = inputId;
          r.value = String(opt);
          r.id = inputId + "-" + j;
          lab.appendChild(r);
          lab.appendChild(document.createTextNode(" "));
          const span = document.createElement("span");
          span.textContent = String(opt);
          optionLabels.push(span);
          lab.appendChild(span);
          field.appendChild(lab);
        });
        wrap.appendChild(field);
      } else {
        field = document.createElement("textarea");
        field.id = inputId;
        field.rows = 2;
        field.maxLength = 2000;
        wrap.appendChild(field);
      }
      wrap.addEventListener("change", updateBranching);
      wrap.addEventListener("input", updateBranching);
      surveyBox.appendChild(wrap);
      qNodes[q.id] = { q: q, wrap: wrap, inputId: inputId, titleText: titleText, untranslated: untranslated,
                       optionLabels: optionLabels };
    });
    updateBranching();
  }

  // ------------------------------------------------------------------ the script's language (per call)
  // The effort's languages, its own first (store/efforts.py "script languages"). An option's value is always the
  // option itself; only what is shown changes, so an answer means the same whatever language it was read in.
  // What has no translation is shown in the first language, marked so the caller knows.
  const languages = cfg.languages || [];
  const primary = languages.length ? languages[0] : { code: "", name: "" };
  let lang = primary.code;
  const langButtons = Array.from(document.querySelectorAll("#script-language button[data-lang]"));
  const nameOf = (code) => (languages.find((l) => l.code === code) || primary).name;

  function relabelSurvey() {
    const second = lang !== primary.code;
    survey.forEach((q) => {
      const n = qNodes[q.id];
      if (!n) return;
      const hasText = second && !!q.second_text;
      n.titleText.textContent = hasText ? q.second_text : q.text;
      n.titleText.lang = hasText ? lang : primary.code;
      const labels = q.second_options || [];
      const hasOptions = second && labels.length === (q.options || []).length && labels.length > 0;
      n.optionLabels.forEach((el, i) => {
        el.textContent = String(hasOptions ? labels[i] : q.options[i]);
        el.lang = hasOptions ? lang : primary.code;
      });
      const missing = second && (!hasText || ((q.options || []).length > 0 && !hasOptions));
      n.untranslated.hidden = !missing;
      n.untranslated.textContent = missing ? " (" + t("not translated: shown in {language}", { language: primary.name }) + ")" : "";
    });
  }

  function setLanguage(code) {
    lang = languages.some((l) => l.code === code) ? code : primary.code;
    langButtons.forEach((b) => b.setAttribute("aria-pressed", b.dataset.lang === lang ? "true" : "false"));
    const group = $("script-language");
    if (group) group.title = t("Script and questions in {language}", { language: nameOf(lang) });
    relabelSurvey();
    if (shownContact) renderScript(shownContact);
  }
  langButtons.forEach((b) => b.addEventListener("click", () => setLanguage(b.dataset.lang)));

  function answerOf(qid) {
    const n = qNodes[qid];
    if (!n) return "";
    if (n.q.kind === "choice") {
      const checked = n.wrap.querySelector("input[type=radio]:checked");
      return checked ? checked.value : "";
    }
    const el = $(n.inputId);
    return el ? el.value.trim() : "";
  }

  function visibleMap() {
    const vis = {};
    survey.forEach((q) => {
      const cond = q.show_if;
      vis[q.id] = !cond || (!!vis[cond.question] && answerOf(cond.question) === String(cond.answer));
    });
    return vis;
  }

  function updateBranching() {
    const vis = visibleMap();
    Object.keys(qNodes).forEach((qid) => { qNodes[qid].wrap.hidden = !vis[qid]; });
  }

  function answers() {
    const vis = visibleMap();
    const out = {};
    survey.forEach((q) => {
      if (!vis[q.id]) return;
      const a = answerOf(q.id);
      if (a) out[q.id] = a;
    });
    return out;
  }

  // ------------------------------------------------------------------ the voter on screen
  let formCallId = null;     // the call the form is for
  const saved = new Set();   // calls whose result was saved (the view may lag behind)
  let lastBeeped = null;
  let reachOpen = false;
  let voterClock = { zone: "", zones: [] };  // the voter's time zone(s), from the view (never their number)

  function setReach(open) {
    reachOpen = open;
    show("reach-reasons", open);
    const tc = $("term-codes");
    if (tc) {
      tc.disabled = open;
      tc.classList.toggle("muted-box", open);
    }
    if (!open && $("no-contact-code")) $("no-contact-code").value = "";
    if (open && $("no-contact-code")) $("no-contact-code").focus();
    showCallbackTime();
  }

  // "Asked to be called back": picked in the voter's own time when their number has one zone (the view sends
  // the zone, never the number), else in the caller's clock with each zone the voter may be in shown beside it.
  // Sent as epoch seconds either way.
  function showCallbackTime() {
    const box = $("callback-when");
    if (box) box.hidden = !(reachOpen && $("no-contact-code").value === "callback");
    renderCallbackClock();
  }
  if ($("no-contact-code")) $("no-contact-code").addEventListener("change", showCallbackTime);
  if ($("callback-at")) $("callback-at").addEventListener("input", renderCallbackClock);

  function offsetText(min) {
    const sign = min < 0 ? "\u2212" : "+";
    const a = Math.abs(min);
    return "UTC" + sign + Math.floor(a / 60) + (a % 60 ? ":" + String(a % 60).padStart(2, "0") : "");
  }

  // The time in a zone; the browser's zone data keeps it right across daylight-saving changes.
  function timeIn(zone, epochMs, withDay) {
    try {
      const opts = { timeZone: zone, hour: "numeric", minute: "2-digit", timeZoneName: "short" };
      if (withDay) { opts.weekday = "short"; opts.month = "short"; opts.day = "numeric"; }
      return new Intl.DateTimeFormat(undefined, opts).format(new Date(epochMs));
    } catch (e) {
      return "";
    }
  }

  // How far ``zone`` is ahead of UTC at ``epochMs`` (ms).
  function zoneOffsetMs(zone, epochMs) {
    const parts = new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", year: "numeric",
      month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(new Date(epochMs));
    const get = (t) => Number((parts.find((p) => p.type === t) || { value: 0 }).value);
    const asUtc = Date.UTC(get("year"), get("month") - 1, get("day"), get("hour") % 24, get("minute"), get("second"));
    return asUtc - Math.floor(epochMs / 1000) * 1000;
  }

  // "2026-12-03T18:00" read as a wall clock in ``zone`` (the voter's) -> epoch ms. The second pass settles a
  // time picked across a daylight-saving change from now.
  function wallTimeIn(value, zone) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value || "");
    if (!m) return NaN;
    const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5]);
    let t = wall - zoneOffsetMs(zone, wall);
    t = wall - zoneOffsetMs(zone, t);
    return t;
  }

  function callbackEpochMs() {
    const when = $("callback-at") ? $("callback-at").value : "";
    if (!when) return NaN;
    if (voterClock.zone) {
      try {
        return wallTimeIn(when, voterClock.zone);
      } catch (e) { /* a zone this browser does not know: fall back to the caller's clock */ }
    }
    return new Date(when).getTime();
  }

  function renderCallbackClock() {
    const label = $("callback-zone");
    const note = $("callback-now");
    if (!label || !note) return;
    const zones = voterClock.zones || [];
    const picked = callbackEpochMs();
    const zoneOk = !!voterClock.zone && timeIn(voterClock.zone, Date.now(), false) !== "";
    if (zoneOk) {
      const z = zones[0];
      label.textContent = t("(their time, {zone})", { zone: z.abbr || z.zone });
      const now = { time: timeIn(z.zone, Date.now(), false), zone: z.zone, offset: offsetText(z.utc_offset_min) };
      note.textContent = isNaN(picked) ? t("It is {time} for them now ({zone}, {offset}).", now)
        : t("It is {time} for them now ({zone}, {offset}); that is {when} your time.", Object.assign(now, {
          when: new Date(picked).toLocaleString(undefined, { weekday: "short", hour: "numeric", minute: "2-digit" }),
        }));
      return;
    }
    label.textContent = t("(your time)");
    if (!zones.length) {
      note.textContent = t("Their time zone is not known from their number: ask them what time it is there.");
      return;
    }
    const at = isNaN(picked) ? Date.now() : picked;
    const times = zones.map((z) => (timeIn(z.zone, at, !isNaN(picked)) || z.time) + " (" + z.zone + ")")
      .join(t(" or "));
    note.textContent = isNaN(picked)
      ? t("Now for them: {times} \u2014 their number may be in more than one time zone.", { times: times })
      : t("For them that is: {times} \u2014 their number may be in more than one time zone.", { times: times });
  }

  function voterTimeText() {
    const zones = voterClock.zones || [];
    return zones.map((z) => (timeIn(z.zone, Date.now(), false) || (z.time + " " + z.abbr)) + " (" + z.zone + ", " +
      offsetText(z.utc_offset_min) + ")").join(" or ");
  }

  // The clocks move while a call goes on: the About pane's "Their time" and the callback note follow.
  setInterval(() => {
    const dd = $("about-their-time");
    if (dd) dd.textContent = voterTimeText();
    if (reachOpen) renderCallbackClock();
  }, 30000);

  function currentCode() {
    if (reachOpen) return $("no-contact-code").value;
    const checked = document.querySelector('#term-codes input[name="code"]:checked');
    return checked ? checked.value : "";
  }

  function resetForm() {
    const form = $("call-form");
    if (form) form.reset();
    setReach(false);
    setError("form-error", "");
    updateBranching();
  }

  function contactFields(c) {
    const f = { first_name: c.first_name || "", last_name: c.last_name || "", city: c.city || "",
                state: c.state || "", zip: c.zip || "" };
    const extra = c.extra || {};
    Object.keys(extra).forEach((k) => { if (!(k in f)) f[k] = extra[k] == null ? "" : String(extra[k]); });
    return f;
  }

  let shownContact = null;  // the voter on screen (the script is drawn again when the language changes)

  function renderScript(c) {
    const box = $("script");
    if (!box) return;
    shownContact = c;
    const fields = contactFields(c);
    box.textContent = "";
    const second = lang !== primary.code;
    const fallback = second && !cfg.second_script;
    const text = (second && !fallback ? cfg.second_script : cfg.script) || "";
    box.lang = second && !fallback ? lang : primary.code;
    const note = $("script-fallback");
    if (note) {
      note.hidden = !fallback;
      note.textContent = fallback ? t("No script in {language}: it is shown in {primary}.",
        { language: nameOf(lang), primary: primary.name }) : "";
    }
    const re = /\{([^{}\n]{1,60})\}/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      box.appendChild(document.createTextNode(text.slice(last, m.index)));
      const key = m[1].trim();
      // The script step only accepts fields the list has, so a brace here is a field: one this voter has no
      // value for (or the caller may not see) reads as a gap, never as "{Ward}".
      const mark = document.createElement("mark");
      const has = Object.prototype.hasOwnProperty.call(fields, key) && fields[key] !== "";
      mark.textContent = has ? fields[key] : "\u2014";
      if (!has) mark.title = t("No {field} for this voter", { field: key });
      box.appendChild(mark);
      last = re.lastIndex;
    }
    box.appendChild(document.createTextNode(text.slice(last)));
  }

  function renderAbout(c) {
    const dl = $("about");
    const card = $("about-card");
    if (!dl || !card) return;
    card.hidden = !cfg.show_about;
    dl.textContent = "";
    const rows = [];
    if (c.phone) rows.push([t("Phone"), c.phone]);
    if ((voterClock.zones || []).length) rows.push([t("Their time"), voterTimeText(), "about-their-time"]);
    rows.push([t("City"), c.city], [t("State"), c.state], [t("ZIP"), c.zip]);
    const extra = c.extra || {};
    Object.keys(extra).forEach((k) => rows.push([k, extra[k]]));
    rows.forEach(([k, v, id]) => {
      if (v == null || v === "") return;
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      if (id) dd.id = id;
      dd.textContent = String(v);
      dl.appendChild(dt);
      dl.appendChild(dd);
    });
  }

  function showContact(view) {
    const c = view.contact;
    const name = [c.first_name, c.last_name].filter(Boolean).join(" ") || "this person";
    $("voter-name").textContent = name;
    $("reach-name").textContent = c.first_name || name;
    const ext = c.phone_ext || "";
    const tel = $("voter-phone");
    if (tel) {
      tel.textContent = c.phone ? c.phone + (ext ? " ext. " + ext : "") : "";
      // A comma is a pause: the phone dials the extension once the call connects.
      tel.href = c.phone ? "tel:" + c.phone + (ext ? "," + ext : "") : "#";
    } else if (ext) {
      const ask = document.createElement("span");
      ask.className = "muted small";
      ask.id = "voter-ext";
      ask.textContent = " · ask for extension " + ext;
      $("voter-name").appendChild(ask);
    }
    voterClock = c.local_time || { zone: "", zones: [] };
    renderAbout(c);
    // Each voter starts in the language their list row names (if the effort has it), else the effort's own.
    if (languages.length > 1) setLanguage(c.script_language || primary.code);
    renderScript(c);
    renderCallbackClock();
  }

  // ------------------------------------------------------------------ rendering a view
  let view = null;
  let countdownTimer = null;
  let listDone = false;
  let breakAfterCall = false; // "Take a break" during a call: the pause starts when the call is done

  function statusText(v) {
    if (v.status === "ended" || v.state === "ended") return t("Session ended");
    if (personal) {
      if (v.contact) return t("Call {name} from your phone", { name: v.contact.first_name || t("the person on screen") });
      return listDone ? t("Nobody left to call right now") : t("Finding the next person to call…");
    }
    const r = v.state_reason;
    switch (v.state) {
      case "waiting_for_phone": return computerAudio ? t("Connect your computer audio") : t("Waiting for your phone to connect");
      case "paused":
        if (r === "ready_to_start") {
          return computerAudio ? t("Computer audio connected: ready when you are") : t("Phone connected: ready when you are");
        }
        if (r === "wrapup_timeout") return t("Paused: the call result wasn't saved in time");
        return t("On a break");
      case "idle": return v.waiting && !v.waiting.dialing ? t("Waiting: nothing to dial right now")
        : t("Looking for your next voter…");
      case "talking":
        return v.contact && v.contact.first_name ? t("On a call with {name}", { name: v.contact.first_name }) : t("On a call");
      case "wrapup": return t("Call ended: save the result");
      case "disconnected":
        // Asterisk restarted under every caller's leg (bridge.volunteer.PBX_LOST_REASON): not their phone's doing.
        if (r === "phone_system_restarted") return t("The phone system restarted: call in again with your code");
        return computerAudio ? t("Your computer audio is disconnected") : t("Your phone is disconnected");
      default: return v.state;
    }
  }

  // Why nothing is put through yet, and until when: the server's reason (bridge/waiting.py), which the
  // organisers' dashboard shows too.
  function renderWaiting(v) {
    const title = $("waiting-title");
    const reason = $("waiting-reason");
    if (!title || !reason) return;
    const w = v.waiting;
    const stuck = !!(w && !w.dialing);
    title.textContent = stuck ? t("Nothing to dial right now") : t("Looking for your next voter…");
    reason.textContent = w && w.text
      ? w.text + " " + (stuck ? t("Stay on the line if you like: calls start by themselves when this changes.")
        : t("Stay on the line."))
      : t("Stay on the line. It can take a few seconds to a couple of minutes.");
  }

  function tickCountdown() {
    const el = $("wrapup-countdown");
    if (!view || view.state !== "wrapup" || !el) return;
    const limit = Number(view.wrapup_limit_s || cfg.wrapup_limit_s || 60);
    const since = Number(view.wrapup_since || (Date.now() / 1000 + skew));
    const left = Math.max(0, Math.ceil(limit - (Date.now() / 1000 + skew - since)));
    el.textContent = String(left);
    el.classList.toggle("urgent", left <= 10);
  }

  function render(v) {
    if (!v) return;
    view = v;
    // Computer audio (webphone.js) follows the session too: it hangs up when it ends.
    document.dispatchEvent(new CustomEvent("pb:session", { detail: v }));
    const ended = v.status === "ended" || v.state === "ended";
    if (v.state !== "talking" && v.state !== "wrapup") breakAfterCall = false;
    $("status-line").textContent = statusText(v) + (breakAfterCall ? " (break after this call)" : "");
    if (v.state === "idle") renderWaiting(v);
    $("live-dot").className = "dot " + (ended ? "off" : v.state);

    const contact = !ended && v.contact && !saved.has(v.call_id) ? v.contact : null;
    if (contact) {
      if (v.call_id !== formCallId) {
        formCallId = v.call_id;
        resetForm();
        showContact(v);
      }
    } else {
      formCallId = null;
    }

    if (ended) {
      ["phone-panel", "disconnected-panel", "start-panel", "waiting-panel", "paused-panel", "call-panel",
       "session-actions", "list-done-panel", "pause-calls", "resume-calls"].forEach((id) => show(id, false));
      show("thank-you", true);
      stopCountdown();
      closeSocket();
      return;
    }
    show("thank-you", false);

    if (personal) {
      show("call-panel", !!contact);
      show("wrapup-banner", false);
      show("list-done-panel", !contact && listDone);
      show("session-actions", true);
      show("paused-panel", false);
      return;
    }

    const phoneUp = !!v.phone_connected;
    const s = v.state;
    const r = v.state_reason;
    const ps = $("phone-status");
    ps.textContent = phoneUp ? "connected" : "waiting for your call…";
    ps.dataset.connected = phoneUp ? "true" : "false";
    ps.className = "pill " + (phoneUp ? "connected" : "waiting");

    show("phone-panel", !phoneUp && s !== "disconnected");
    show("disconnected-panel", s === "disconnected");
    show("start-panel", phoneUp && s === "paused" && r === "ready_to_start");
    show("waiting-panel", phoneUp && s === "idle" && !contact);
    const onBreak = s === "paused" && r !== "ready_to_start";
    show("paused-panel", onBreak);
    if (onBreak) {
      if (r === "wrapup_timeout") {
        $("paused-title").textContent = t("You were paused because the call result wasn't saved in time");
        $("paused-message").textContent = contact
          ? t("You can still save the last call's result below. Then resume to get your next call.")
          : t("Resume when you are ready for your next call.");
      } else {
        $("paused-title").textContent = t("You are on a break");
        $("paused-message").textContent = t("No calls will come through until you resume.");
      }
    }
    show("call-panel", !!contact);
    show("end-call", s === "talking");
    show("wrapup-banner", s === "wrapup" && !!contact);
    show("session-actions", true);
    show("pause-calls", phoneUp && (s === "idle" || s === "talking" || s === "wrapup"));
    show("resume-calls", false);

    if (s === "talking" && v.call_id && v.call_id !== lastBeeped) {
      lastBeeped = v.call_id;
      beep();
    }
    if (s === "wrapup") startCountdown(); else stopCountdown();
  }

  function startCountdown() {
    tickCountdown();
    if (!countdownTimer) countdownTimer = setInterval(tickCountdown, 250);
  }

  function stopCountdown() {
    if (countdownTimer) clearInterval(countdownTimer);
    countdownTimer = null;
  }

  // ------------------------------------------------------------------ live updates (WebSocket)
  let ws = null;
  let wsRetry = 500;
  let wsWanted = !personal;

  function openSocket() {
    if (!wsWanted) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(proto + "//" + location.host + "/ws/session/" + sid);
    ws.addEventListener("open", () => { wsRetry = 500; });
    ws.addEventListener("message", (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (e) { return; }
      if (msg && msg.type === "session") render(msg.session);
    });
    ws.addEventListener("close", () => {
      ws = null;
      if (!wsWanted) return;
      $("status-line").textContent = t("Reconnecting to the server…");
      setTimeout(openSocket, wsRetry);
      wsRetry = Math.min(wsRetry * 2, 10000);
    });
  }

  function closeSocket() {
    wsWanted = false;
    if (ws) ws.close();
  }

  // ------------------------------------------------------------------ actions
  async function act(fn) {
    setError("page-error", "");
    try {
      return await fn();
    } catch (e) {
      setError("page-error", e.message);
      return null;
    }
  }

  async function refresh() {
    render(await request("GET", "/api/sessions/" + sid));
  }

  async function action(name) {
    return act(async () => render(await post("/api/sessions/" + sid + "/" + name)));
  }

  async function personalNext() {
    return act(async () => {
      const v = await post("/api/personal/" + sid + "/next");
      listDone = !!v.list_done;
      render(v);
    });
  }

  async function saveResult(stopAfter) {
    setError("form-error", "");
    const code = currentCode();
    if (!code) {
      setError("form-error", reachOpen
        ? t("Choose why you couldn't reach them (or Cancel).")
        : t("Choose a call result: a \u201cTalked to correct person\u201d option, or \u201cI couldn't reach…\u201d and a reason."));
      return false;
    }
    const callId = formCallId;
    const body = { code: code, notes: $("notes").value, answers: answers(), call_id: callId };
    if (lang) body.language = lang;  // the language the script was read in, recorded with the result
    if (code === "callback") {
      const when = callbackEpochMs();
      if (isNaN(when)) {
        setError("form-error", t("Choose when to call them back."));
        return false;
      }
      body.callback_at = when / 1000;
    }
    const btn = $("save-next");
    btn.disabled = true;
    try {
      if (personal) {
        body.stop = !!stopAfter;
        const v = await post("/api/personal/" + sid + "/disposition", body);
        saved.add(callId);
        listDone = !!v.list_done;
        render(v);
      } else {
        await post("/api/sessions/" + sid + "/disposition", body);
        saved.add(callId);
        if (!stopAfter) await refresh();
      }
      return true;
    } catch (e) {
      setError("form-error", t("Not saved: {error}", { error: e.message }));
      return false;
    } finally {
      btn.disabled = false;
    }
  }

  async function stopCalling() {
    // A result chosen for the call on screen is saved first; without one the call simply ends unsaved.
    if (formCallId && view && view.contact && currentCode()) {
      if (!(await saveResult(true))) return;
    }
    await act(async () => {
      const path = personal ? "/api/personal/" + sid + "/stop" : "/api/sessions/" + sid + "/stop";
      render(await post(path));
    });
  }

  function on(id, event, fn) {
    const el = $(id);
    if (el) el.addEventListener(event, fn);
  }

  on("start-calling", "click", () => { unlockAudio(); action("resume"); });
  on("resume", "click", () => action("resume"));
  on("resume-calls", "click", () => action("resume"));
  on("pause-calls", "click", () => {
    breakAfterCall = !!view && (view.state === "talking" || view.state === "wrapup");
    action("pause");
  });
  on("end-call", "click", () => action("hangup"));
  on("couldnt-reach", "click", () => setReach(true));
  on("cancel-reach", "click", () => setReach(false));
  on("call-form", "submit", (ev) => { ev.preventDefault(); saveResult(false); });
  on("stop-calling", "click", stopCalling);
  on("check-again", "click", personalNext);
  on("feedback", "submit", async (ev) => {
    ev.preventDefault();
    const result = $("feedback-result");
    const text = $("feedback-text").value.trim();
    if (!text) {
      result.textContent = t("Write what happened first.");
      result.className = "error";
      result.hidden = false;
      return;
    }
    try {
      await post("/api/feedback", { session_id: sid, kind: $("feedback-kind").value, text: text });
      $("feedback-text").value = "";
      result.textContent = t("Thank you: the organisers have it.");
      result.className = "ok";
    } catch (e) {
      result.textContent = t("Not sent: {error}", { error: e.message });
      result.className = "error";
    }
    result.hidden = false;
  });

  buildSurvey();
  if (cfg.ended) {
    render({ status: "ended", state: "ended", contact: null });
  } else if (personal) {
    personalNext();
  } else {
    openSocket();
  }
})();

// ------------------------------------------------------------------ keyboard shortcuts (issue 14)
// 1-9 pick the call's result (the term codes in order), N saves and goes to the next call, R opens "I couldn't
// reach", E ends the call, L switches the script's language (an effort in two languages). Each control shows its key in a <kbd> badge (no words: nothing to translate). Keys do
// nothing while the caller types (text fields, notes, selects) or holds a modifier, and only act on a control
// that is on screen and enabled, so a key can never do what the caller could not click.
(function () {
  "use strict";
  const panel = document.getElementById("call-panel");
  if (!panel) return;
  const radios = () => Array.from(document.querySelectorAll('#term-codes input[name="code"]')).slice(0, 9);
  const buttons = { n: "save-next", r: "couldnt-reach", e: "end-call" };

  function badge(el, key) {
    if (!el || el.querySelector("kbd.shortcut")) return;
    const k = document.createElement("kbd");
    k.className = "shortcut";
    k.textContent = key;
    el.appendChild(document.createTextNode(" "));
    el.appendChild(k);
  }
  radios().forEach((r, i) => {
    r.setAttribute("aria-keyshortcuts", String(i + 1));
    badge(r.closest("label"), String(i + 1));
  });
  Object.keys(buttons).forEach((key) => {
    const b = document.getElementById(buttons[key]);
    if (!b) return;
    b.setAttribute("aria-keyshortcuts", key.toUpperCase());
    badge(b, key.toUpperCase());
  });
  const langGroup = document.getElementById("script-language");
  if (langGroup) {
    langGroup.querySelectorAll("button").forEach((b) => b.setAttribute("aria-keyshortcuts", "L"));
    badge(langGroup, "L");
  }

  function typing(el) {
    if (!el || !el.tagName) return false;
    if (el.isContentEditable) return true;
    const tag = el.tagName.toLowerCase();
    if (tag === "textarea" || tag === "select") return true;
    if (tag !== "input") return false;
    return !["radio", "checkbox", "button", "submit", "reset"].includes((el.type || "").toLowerCase());
  }

  function usable(el) {
    // On screen (no hidden ancestor) and not disabled (a disabled fieldset disables its radios).
    return !!el && !el.disabled && !el.closest("[hidden]") && !el.closest("fieldset:disabled");
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.defaultPrevented || ev.repeat || ev.ctrlKey || ev.altKey || ev.metaKey) return;
    if (panel.hidden || typing(ev.target)) return;
    const key = (ev.key || "").toLowerCase();
    let target = null;
    if (/^[1-9]$/.test(key)) {
      const r = radios()[Number(key) - 1];
      if (usable(r)) {
        r.checked = true;
        r.focus();
        r.dispatchEvent(new Event("change", { bubbles: true }));
        ev.preventDefault();
      }
      return;
    }
    if (key === "l") target = document.querySelector('#script-language button[aria-pressed="false"]');
    else if (buttons[key]) target = document.getElementById(buttons[key]);
    if (usable(target)) {
      ev.preventDefault();
      target.click();
    }
  });
})();
