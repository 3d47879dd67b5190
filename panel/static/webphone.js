/* Computer audio: the caller's browser is their phone (JsSIP over a WebSocket to Asterisk, WebRTC media).
 *
 * Steps: ask for the microphone → level meter + "Play test sound" → Connect: fresh SIP credentials for this
 * session (POST /api/sessions/{sid}/sip {"kind": "webrtc"}), register, call the session's join extension. The leg
 * joins the session's holding bridge like a phoned-in leg, so caller.js (which renders the session view) works
 * unchanged; it tells us each view through a "pb:session" event.
 *
 * Every failure says what to do. The leg is redialled on its own after a drop (with backoff); the PBX pauses the
 * session after ~20 s without media, exactly as when a phone hangs up. One tab per session holds the leg
 * (BroadcastChannel); closing the tab hangs up.
 */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  // The page's language, as in caller.js: this script's strings come translated in the page's JSON block
  // (caller/_js_strings.html), keyed by the English; {name} is a value filled in here. (Not t: a common loop name.)
  const stringsEl = $("caller-strings");
  const STRINGS = stringsEl ? JSON.parse(stringsEl.textContent) : {};
  const tr = (s, vars) => (STRINGS[s] || s).replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? String(vars[k]) : m));
  const root = $("webphone");
  const cfgEl = $("caller-config");
  if (!root || !cfgEl) return;
  const cfg = JSON.parse(cfgEl.textContent);
  const sid = cfg.session_id;
  const csrfMeta = document.querySelector('meta[name="csrf-token"]');
  const csrf = csrfMeta ? csrfMeta.content : "";
  const tabId = Math.random().toString(36).slice(2) + Date.now().toString(36);

  let micStream = null;
  let audioCtx = null;
  let meterFrame = 0;
  let ua = null;
  let call = null;
  let wanted = false;        // the caller asked to be connected (and nothing since said stop)
  let ended = false;         // the session is over
  let displaced = false;     // another tab took the leg
  let retryTimer = null;
  let retryDelay = 2000;
  let legUp = false;
  let muted = false;
  let socketOpened = false;  // the WebSocket to the PBX opened at least once in this page

  function showCertLink(wsUrl) {
    const a = $("webphone-cert-link");
    try {
      const u = new URL(wsUrl);
      a.href = "https://" + u.host + "/";
      a.textContent = "https://" + u.host + "/";
      show("webphone-cert", true);
    } catch (e) { /* not a URL: nothing to link */ }
  }

  // ------------------------------------------------------------------ messages
  function status(text, kind) {
    const el = $("webphone-status");
    el.textContent = text;
    el.className = "pill " + (kind || "waiting");
    root.dataset.state = kind || "waiting";
  }

  function error(message) {
    const el = $("webphone-error");
    el.textContent = message || "";
    el.hidden = !message;
  }

  function show(id, on) {
    const el = $(id);
    if (el) el.hidden = !on;
  }

  const ua_ = navigator.userAgent;
  const isFirefox = /Firefox\//.test(ua_);
  const isSafari = /Safari\//.test(ua_) && !/Chrome\/|Chromium\/|Android/.test(ua_);

  function micError(e) {
    const name = (e && e.name) || "";
    if (name === "NotAllowedError" || name === "SecurityError" || name === "PermissionDeniedError") {
      if (isFirefox) {
        return tr("Your browser blocked the microphone. In Firefox, click the crossed-out microphone icon at the " +
          "left of the address bar, remove the block (\"Blocked temporarily\" or \"Blocked\"), then click \"Try the " +
          "microphone again\".");
      }
      if (isSafari) {
        return tr("Your browser blocked the microphone. In Safari, open Safari > Settings for This Website > " +
          "Microphone > Allow, then click \"Try the microphone again\".");
      }
      return tr("Your browser blocked the microphone. In Chrome, click the icon at the left of the address bar " +
        "(site settings), set Microphone to Allow, then click \"Try the microphone again\" (or reload the page).");
    }
    if (name === "NotFoundError" || name === "OverconstrainedError" || name === "DevicesNotFoundError") {
      return tr("No microphone found. Plug in a headset (or choose one in your computer's sound settings), then " +
        "click \"Try the microphone again\".");
    }
    if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
      return tr("Your microphone is busy or could not start. Close other apps that use it (Zoom, Teams, another " +
        "call tab), then click \"Try the microphone again\".");
    }
    return tr("The microphone could not start ({name}). Try again, or call in by phone below.", { name: name || String(e) });
  }

  function unsupported() {
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return tr("Computer audio needs a secure (https) page. Ask your organiser for the https link, or call in by " +
        "phone below.");
    }
    if (!window.RTCPeerConnection) return tr("This browser cannot make calls. Use Chrome or Firefox, or call in by phone.");
    if (!window.JsSIP) return tr("The calling library did not load. Reload the page; if it keeps failing, call in by phone.");
    return "";
  }

  // ------------------------------------------------------------------ microphone, meter, test sound
  function context() {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    if (!audioCtx) audioCtx = new Ctx();
    if (audioCtx.state === "suspended") audioCtx.resume();
    return audioCtx;
  }

  function startMeter(stream) {
    const ctx = context();
    const meter = $("webphone-level");
    if (!ctx || !meter) return;
    const src = ctx.createMediaStreamSource(stream);
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 1024;
    src.connect(analyser);  // not to the speakers: no echo of the caller's own voice
    const buf = new Float32Array(analyser.fftSize);
    let heard = false;
    cancelAnimationFrame(meterFrame);
    const tick = () => {
      analyser.getFloatTimeDomainData(buf);
      let sum = 0;
      for (let i = 0; i < buf.length; i++) sum += buf[i] * buf[i];
      const rms = Math.sqrt(sum / buf.length);
      // dBFS -60..0 onto 0..1: speech sits in the upper half.
      const level = muted ? 0 : Math.max(0, Math.min(1, (20 * Math.log10(rms + 1e-9) + 60) / 60));
      meter.value = level;
      if (!heard && level > 0.35) {
        heard = true;
        $("webphone-heard").textContent = tr("We can hear your microphone.");
      }
      meterFrame = requestAnimationFrame(tick);
    };
    tick();
  }

  async function askMicrophone() {
    error("");
    const why = unsupported();
    if (why) {
      error(why);
      status(tr("Not available"), "error");
      return false;
    }
    status(tr("Asking for your microphone…"), "waiting");
    try {
      micStream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true }, video: false });
    } catch (e) {
      error(micError(e));
      status(tr("Microphone not available"), "error");
      show("webphone-retry-mic", true);
      return false;
    }
    micStream.getAudioTracks().forEach((t) => t.addEventListener("ended", () => {
      if (wanted) error(tr("Your microphone was unplugged or switched off. Plug it back in, then click \"Try the " +
                         "microphone again\"."));
      show("webphone-retry-mic", true);
    }));
    show("webphone-retry-mic", false);
    show("webphone-check", true);
    startMeter(micStream);
    // A microphone plugged back in during a call: the voters hear the new one without redialling.
    const pc = call && call.connection;
    if (pc) {
      const track = micStream.getAudioTracks()[0];
      pc.getSenders().forEach((sender) => {
        if (sender.track === null || (sender.track && sender.track.kind === "audio")) sender.replaceTrack(track);
      });
      if (muted) setMute(true);
    }
    if (legUp) status(tr("Connected"), "connected");
    else status(tr("Microphone ready: test it, then connect"), "waiting");
    $("webphone-connect").disabled = false;
    return true;
  }

  function playTestSound() {
    const ctx = context();
    if (!ctx) return;
    // Three rising notes through the same output the voters will come out of.
    const t0 = ctx.currentTime + 0.05;
    [523.25, 659.25, 783.99].forEach((f, i) => {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0, t0 + i * 0.35);
      gain.gain.linearRampToValueAtTime(0.25, t0 + i * 0.35 + 0.02);
      gain.gain.linearRampToValueAtTime(0, t0 + i * 0.35 + 0.3);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(t0 + i * 0.35);
      osc.stop(t0 + i * 0.35 + 0.32);
    });
    $("webphone-heard-sound").hidden = false;
  }

  // ------------------------------------------------------------------ one tab per session
  const channel = window.BroadcastChannel ? new BroadcastChannel("phonebank-webphone-" + sid) : null;
  let otherTab = false;
  if (channel) {
    channel.onmessage = (ev) => {
      const m = ev.data || {};
      if (m.from === tabId) return;
      if (m.type === "hello" && (wanted || legUp)) channel.postMessage({ type: "busy", from: tabId });
      if (m.type === "busy") {
        otherTab = true;
        error(tr("Computer audio for this session is already on in another tab or window. Use that one, or click " +
              "\"Use this tab instead\" to move it here."));
        show("webphone-takeover", true);
      }
      if (m.type === "takeover" && (wanted || legUp)) {
        displaced = true;
        disconnect();
        status(tr("Moved to another tab"), "error");
        error(tr("Computer audio moved to another tab. This tab no longer has your microphone or the voters."));
        show("webphone-connect", false);
      }
    };
    channel.postMessage({ type: "hello", from: tabId });
  }

  // ------------------------------------------------------------------ the SIP leg
  async function credentials() {
    const resp = await fetch("/api/sessions/" + sid + "/sip", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ kind: "webrtc" }) });
    let data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    if (!resp.ok) {
      const err = new Error(resp.status === 401 ? tr("Your login has expired: log in again.")
        : (data && data.error) || (resp.status === 409 ? tr("This session has ended.")
          : tr("the server said {status}", { status: resp.status })));
      // Asking again will not help (ended session, expired login, not yours); a 5xx or no answer might.
      err.fatal = resp.status >= 400 && resp.status < 500;
      throw err;
    }
    return data;
  }

  function scheduleRetry(why) {
    if (!wanted || ended || displaced || retryTimer) return;
    status(tr("Reconnecting…"), "waiting");
    error(why + " " + tr("We are reconnecting on our own (next try in {seconds} s). If voice stays silent for about " +
          "20 seconds your session is paused, as when a phone hangs up, and no voter is called until you are back.",
          { seconds: Math.round(retryDelay / 1000) }));
    retryTimer = setTimeout(() => {
      retryTimer = null;
      connect();
    }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 30000);
  }

  function stopUa() {
    if (call) { try { call.terminate(); } catch (e) { /* already over */ } }
    call = null;
    if (ua) { try { ua.stop(); } catch (e) { /* already stopped */ } }
    ua = null;
    legUp = false;
  }

  function disconnect() {
    wanted = false;
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    stopUa();
  }

  function placeCall(creds) {
    const remote = $("webphone-audio");
    call = ua.call("sip:" + creds.dial + "@" + creds.domain, {
      mediaStream: micStream,
      pcConfig: { iceServers: creds.ice_servers || [], rtcpMuxPolicy: "require", bundlePolicy: "max-bundle" },
      rtcOfferConstraints: { offerToReceiveAudio: true, offerToReceiveVideo: false },
      eventHandlers: {
        peerconnection: (e) => {
          e.peerconnection.addEventListener("track", (ev) => {
            remote.srcObject = ev.streams && ev.streams[0] ? ev.streams[0] : new MediaStream([ev.track]);
            const p = remote.play();
            if (p && p.catch) p.catch(() => { /* autoplay: the Connect click allows it */ });
          });
        },
        progress: () => status(tr("Calling the phone bank…"), "waiting"),
        confirmed: () => {
          legUp = true;
          retryDelay = 2000;
          error("");
          status(tr("Connected"), "connected");
          if (muted) setMute(true);
        },
        ended: (e) => {
          legUp = false;
          call = null;
          if (ended || !wanted) return;
          scheduleRetry(tr("Your computer audio was cut off ({cause}).", { cause: e.cause }));
        },
        failed: (e) => {
          legUp = false;
          call = null;
          if (ended || !wanted) return;
          const causes = JsSIP.C.causes;
          if (e.cause === causes.AUTHENTICATION_ERROR || e.cause === causes.REJECTED || e.cause === causes.NOT_FOUND) {
            stopUa();  // fresh credentials on the next try
          }
          scheduleRetry(tr("The call to the phone bank failed ({cause}).", { cause: e.cause }));
        },
      },
    });
  }

  async function connect() {
    if (ended || displaced) return;
    error("");
    if (!micStream && !(await askMicrophone())) return;
    wanted = true;
    show("webphone-connect", false);
    show("webphone-hangup", true);
    if (ua && ua.isConnected() && ua.isRegistered()) {
      placeCall(ua.__pbCreds);
      return;
    }
    stopUa();
    status(tr("Connecting…"), "waiting");
    let creds;
    try {
      creds = await credentials();
    } catch (e) {
      if (e.fatal) {
        error(tr("Could not connect: {error}", { error: e.message }));
        status(tr("Not connected"), "error");
        wanted = false;
        return;
      }
      scheduleRetry(tr("Could not reach the server ({error}).", { error: e.message }));
      return;
    }
    if (!wanted) return;
    const socket = new JsSIP.WebSocketInterface(creds.ws_url);
    ua = new JsSIP.UA({
      sockets: [socket],
      uri: "sip:" + creds.username + "@" + creds.domain,
      authorization_user: creds.username,
      password: creds.password,
      register: true,
      register_expires: 300,
      session_timers: false,
      connection_recovery_min_interval: 2,
      connection_recovery_max_interval: 16,
      user_agent: "phonebank-webphone",
    });
    ua.__pbCreds = creds;
    const me = ua;
    ua.on("registered", () => {
      if (me !== ua || !wanted) return;
      if (!call) placeCall(creds);
    });
    ua.on("registrationFailed", (e) => {
      if (me !== ua || !wanted) return;
      stopUa();
      scheduleRetry(tr("The phone bank refused this browser's sign-in ({cause}).", { cause: e.cause }));
    });
    ua.on("disconnected", () => {
      if (me !== ua || !wanted || ended) return;
      // JsSIP reopens the WebSocket on its own; the voice path (UDP) may well still be up meanwhile.
      status(tr("Reconnecting…"), "waiting");
      if (!socketOpened) {
        // Never reached at all: most often a demo or test server's self-signed certificate, which a browser
        // will not accept for a WebSocket until the person has accepted it once on a page of that origin.
        showCertLink(creds.ws_url);
        error(tr("Could not open the secure connection to the phone system. On a demo or test server with its " +
              "own (self-signed) certificate, open the link below once, accept the browser's warning, then " +
              "come back. We are reconnecting on our own meanwhile."));
        return;
      }
      error(tr("The connection to the phone bank dropped. We are reconnecting on our own; if voice stays silent " +
            "for about 20 seconds your session is paused, as when a phone hangs up, and no voter is called " +
            "until you are back."));
    });
    ua.on("connected", () => {
      if (me !== ua || !wanted) return;
      socketOpened = true;
      show("webphone-cert", false);
      if (legUp) {
        error("");
        status(tr("Connected"), "connected");
      }
    });
    ua.start();
  }

  function setMute(on) {
    muted = on;
    if (micStream) micStream.getAudioTracks().forEach((t) => { t.enabled = !on; });
    const b = $("webphone-mute");
    b.textContent = on ? tr("Unmute") : tr("Mute");
    b.setAttribute("aria-pressed", on ? "true" : "false");
  }

  // ------------------------------------------------------------------ the session view (from caller.js)
  document.addEventListener("pb:session", (ev) => {
    const v = ev.detail || {};
    if (v.status === "ended" || v.state === "ended") {
      ended = true;
      disconnect();
      if (micStream) micStream.getTracks().forEach((t) => t.stop());
      cancelAnimationFrame(meterFrame);
      status(tr("Session ended"), "waiting");
      show("webphone-connect", false);
      show("webphone-hangup", false);
      return;
    }
    // The PBX dropped the leg (no media, hung up) while we think we are up: dial again.
    if (wanted && legUp && v.phone_connected === false && v.state === "disconnected" && call) {
      try { call.terminate(); } catch (e) { /* over */ }
    }
  });

  // Closing the tab (or navigating away) hangs up: BYE goes out before the page is gone; the PBX pauses.
  window.addEventListener("pagehide", () => {
    ended = true;
    stopUa();
    if (channel) channel.close();
  });

  // ------------------------------------------------------------------ buttons
  $("webphone-retry-mic").addEventListener("click", askMicrophone);
  $("webphone-test").addEventListener("click", playTestSound);
  $("webphone-connect").addEventListener("click", () => { context(); retryDelay = 2000; connect(); });
  $("webphone-hangup").addEventListener("click", () => {
    disconnect();
    status(tr("Not connected"), "waiting");
    show("webphone-hangup", false);
    show("webphone-connect", true);
  });
  $("webphone-mute").addEventListener("click", () => setMute(!muted));
  $("webphone-takeover").addEventListener("click", () => {
    if (channel) channel.postMessage({ type: "takeover", from: tabId });
    otherTab = false;
    show("webphone-takeover", false);
    error("");
    setTimeout(() => { context(); connect(); }, 500);
  });

  // For tests and support: what the leg is doing, and the incoming audio's energy (getStats, no audio content).
  window.pbWebphone = {
    state: () => ({ wanted: wanted, legUp: legUp, ended: ended, otherTab: otherTab, displaced: displaced }),
    connection: () => (call && call.connection) || null,
    inboundAudio: async () => {
      const pc = call && call.connection;
      if (!pc) return null;
      const stats = await pc.getStats();
      let out = null;
      stats.forEach((s) => {
        if (s.type === "inbound-rtp" && (s.kind === "audio" || s.mediaType === "audio")) {
          out = { packetsReceived: s.packetsReceived, totalAudioEnergy: s.totalAudioEnergy,
                  audioLevel: s.audioLevel, bytesReceived: s.bytesReceived };
        }
      });
      return out;
    },
  };

  if (cfg.ended) {
    ended = true;
    status(tr("Session ended"), "waiting");
    return;
  }
  askMicrophone();
})();
