// Siaga 112 console: the live queue (SSE, reconnecting by itself), the screen pop, keyboard
// tagging. Plain JavaScript, served by the backend: nothing is loaded from the internet.
(function () {
  "use strict";
  var body = document.body;
  var prefix = body.dataset.prefix || "/console";
  var member = body.dataset.member || "";
  var phone = body.dataset.interface || "";
  var loggedIn = !!document.getElementById("logout");
  var LIVE = { in_ivr: 1, queued: 1, ringing: 1, connected: 1 };
  var calls = {};
  var dirty = false;
  var table = document.getElementById("queue");
  var labels = table ? JSON.parse(table.dataset.labels) : {};

  function key(m) { return m.pbx + "/" + m.uniqueid; }
  function since(m) { return m.queued_at || m.started_at; }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  function render() {
    if (!table) return;
    var tbody = document.getElementById("queue-body");
    var rows = Object.keys(calls).map(function (k) { return calls[k]; });
    rows.sort(function (a, b) { return (since(a) || "").localeCompare(since(b) || ""); });
    tbody.textContent = "";
    if (!rows.length) {
      var empty = el("tr"); var td = el("td", labels.none); td.colSpan = 5; empty.appendChild(td);
      tbody.appendChild(empty);
      return;
    }
    rows.forEach(function (m) {
      var ended = !LIVE[m.outcome];
      var tr = el("tr");
      tr.id = "call-" + m.uniqueid.replace(/\W/g, "-");
      tr.dataset.outcome = m.outcome;
      if (ended) tr.className = "ended";
      if (mine(m) && !ended) tr.className += " mine";
      var who = el("td", m.caller_e164 || m.caller_id_raw || labels.no_number);
      if (m.caller_id_private) who.appendChild(el("span", " 🔒 " + labels.withheld, "badge"));
      if (m.flagged) { who.appendChild(document.createTextNode(" ")); who.appendChild(el("span", "⚑ " + labels.flagged, "badge flag")); }
      tr.appendChild(who);
      var state = ended ? "ended" : m.outcome;
      tr.appendChild(el("td", labels[state] || m.outcome, "state state-" + state));
      var wait = el("td", "", "wait");
      if (!ended && m.outcome !== "connected" && since(m)) wait.dataset.since = since(m);
      else if (m.wait_seconds !== undefined && m.wait_seconds !== null) wait.textContent = clock(m.wait_seconds);
      tr.appendChild(wait);
      tr.appendChild(el("td", m.operator || "–"));
      var open = el("td");
      var a = el("a", labels.open); a.href = prefix + "/calls/live/" + encodeURIComponent(m.pbx) + "/" + encodeURIComponent(m.uniqueid);
      open.appendChild(a); tr.appendChild(open);
      tbody.appendChild(tr);
    });
    tick();
  }

  // A surge brings many changes in one read: the table is drawn once per frame, not once each.
  var drawing = false;
  function renderSoon() {
    if (drawing) return;
    drawing = true;
    requestAnimationFrame(function () { drawing = false; render(); });
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("td.wait[data-since]").forEach(function (td) {
      td.textContent = clock((now - Date.parse(td.dataset.since)) / 1000);
    });
  }

  function apply(m) {
    if (!m.uniqueid) return;
    var k = key(m);
    var old = calls[k];
    if (old && m.flagged === undefined) m.flagged = old.flagged;
    calls[k] = m;
    if (!LIVE[m.outcome]) setTimeout(function () { if (calls[k] === m) { delete calls[k]; render(); } }, 5000);
    pop(m);
  }

  function popped(k) {
    try { var seen = JSON.parse(sessionStorage.getItem("popped") || "[]"); return seen.indexOf(k) >= 0; } catch (e) { return false; }
  }
  function remember(k) {
    try { var seen = JSON.parse(sessionStorage.getItem("popped") || "[]"); seen.push(k); sessionStorage.setItem("popped", JSON.stringify(seen.slice(-50))); } catch (e) { /* private mode */ }
  }

  // This operator's call: rung on their phone (queue member interface) or their member name.
  function mine(m) {
    return (phone && m.operator_interface === phone) || (member && m.operator === member);
  }

  function pop(m) {
    if (!mine(m) || (m.outcome !== "ringing" && m.outcome !== "connected")) return;
    var k = key(m);
    if (popped(k)) return;
    remember(k);
    var url = prefix + "/calls/live/" + encodeURIComponent(m.pbx) + "/" + encodeURIComponent(m.uniqueid);
    if (dirty) {
      var banner = document.getElementById("pop-banner");
      banner.textContent = "☏ " + (labels.incoming || "") + ": " + (m.caller_e164 || m.caller_id_raw || "") + " ";
      var a = el("a", labels.open || "Open"); a.href = url; banner.appendChild(a);
      banner.hidden = false;
      return;
    }
    window.location.assign(url);
  }

  // Changes pushed while the board is being read again: the board may have been read before
  // they were stored, so they are applied once more on top of it, in order.
  var arrived = null;
  function reload() {
    if (!table) return Promise.resolve();
    arrived = [];
    return fetch(prefix + "/board.json", { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) { window.location.assign(prefix + "/login?expired=1"); return null; }
      return r.ok ? r.json() : null;
    }).then(function (rows) {
      if (!rows) return;
      calls = {};
      rows.forEach(function (m) { calls[key(m)] = m; });
      arrived.forEach(apply);
      render();
    }).catch(function () { /* the stream's reconnect retries */ }).then(function () { arrived = null; });
  }

  var status = document.getElementById("live-status");
  function showStatus(ok) {
    if (!status) return;
    status.textContent = ok ? status.dataset.ok : status.dataset.retry;
    status.className = "live-status " + (ok ? "ok" : "down");
    if (table) table.dataset.live = ok ? "1" : "0";
  }

  var source = null, opened = false;
  function connect() {
    source = new EventSource(prefix + "/live");
    source.onopen = function () {
      showStatus(true);
      if (opened) reload(); // missed changes while away: read the board again
      opened = true;
    };
    source.addEventListener("call", function (e) {
      var m = JSON.parse(e.data);
      if (arrived) arrived.push(m);
      apply(m); renderSoon();
    });
    source.addEventListener("resync", function () { reload(); });
    source.addEventListener("unauthorized", function () {
      // Logged out elsewhere, deactivated or demoted: the log-in page says so.
      source.close();
      window.location.assign(prefix + "/login?expired=1");
    });
    source.onerror = function () {
      showStatus(false);
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up (an error page while the backend restarted): start again.
        setTimeout(function () { reload(); connect(); }, 3000);
      }
    };
  }

  if (table) {
    JSON.parse(document.getElementById("queue-snapshot").textContent).forEach(function (m) { calls[key(m)] = m; });
    render();
    setInterval(tick, 1000);
  }
  if (loggedIn) {
    connect();
    // A page left for another keeps its stream open in the back/forward cache: six such pages
    // take every connection the browser allows to this server, and the next page or form waits
    // (a minute, in Chromium). Closed when left; opened again if the page comes back.
    window.addEventListener("pagehide", function () { if (source) source.close(); });
    window.addEventListener("pageshow", function (e) { if (e.persisted) connect(); });
  }

  // Unsaved work is never thrown away by a screen pop: a banner asks instead.
  document.querySelectorAll("main form").forEach(function (f) {
    f.addEventListener("input", function () { dirty = true; });
    f.addEventListener("submit", function () { dirty = false; });
  });

  // One key tags the call: D, I, B (not while typing in a field).
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target.tagName;
    if (t === "INPUT" || t === "TEXTAREA" || t === "SELECT") return;
    var button = document.querySelector('button.tag-btn[data-key="' + e.key.toLowerCase() + '"]');
    if (button) { e.preventDefault(); button.click(); }
  });

  // The village list follows the district.
  var district = document.getElementById("district"), village = document.getElementById("village");
  if (district && village) {
    district.addEventListener("change", function () {
      Array.prototype.forEach.call(village.options, function (o) {
        o.hidden = !!o.dataset.district && !!district.value && o.dataset.district !== district.value;
      });
      if (village.selectedOptions[0] && village.selectedOptions[0].hidden) village.value = "";
    });
  }
  // Marking an agency primary also assigns it.
  document.querySelectorAll('input[name="primary"]').forEach(function (radio) {
    radio.addEventListener("change", function () {
      var box = document.getElementById("agency-" + radio.value);
      if (box) box.checked = true;
    });
  });
})();
