// Live updates without a reload, and nothing else: an element with `data-live-url` polls that
// small JSON endpoint once a second, for at most two minutes, until what it shows is settled
// (a sale shipped, delivered or canceled; a delivery succeeded or failed). No inline script, no
// build step; every value is written with textContent, never as HTML.
(function () {
  "use strict";
  var INTERVAL_MS = 1000;
  var DEADLINE_MS = 120000;

  function setField(root, name, value) {
    var nodes = root.querySelectorAll('[data-field="' + name + '"]');
    for (var i = 0; i < nodes.length; i++) {
      var node = nodes[i];
      if (node.closest("[data-live-url]") !== root) { continue; }  // a nested watcher's
      if (node.tagName === "INPUT") { node.value = value; continue; }
      node.textContent = value === null || value === undefined ? "\u2014" : String(value);
      if (name === "status") { node.className = "badge " + value; }
    }
  }

  function rebuildHistory(root, history) {
    var body = root.querySelector('[data-field="history"]');
    if (!body || !history || body.closest("[data-live-url]") !== root) { return; }
    while (body.firstChild) { body.removeChild(body.firstChild); }
    history.forEach(function (h) {
      var row = document.createElement("tr");
      [h.at.slice(0, 19).replace("T", " "), h.from_status || "\u2014", h.to_status, h.actor, h.reason]
        .forEach(function (text) {
          var cell = document.createElement("td");
          cell.textContent = text;
          row.appendChild(cell);
        });
      body.appendChild(row);
    });
  }

  function updateLines(root, lines) {
    if (!lines) { return; }
    lines.forEach(function (line, index) {
      var row = root.querySelector('tr[data-line="' + index + '"]');
      if (!row) { return; }
      ["reserved", "backordered", "shipped"].forEach(function (name) {
        var cell = row.querySelector('[data-cell="' + name + '"]');
        if (cell) {
          cell.textContent = String(line[name]);
          cell.className = name === "backordered" && line[name] ? "warn" : "";
        }
      });
    });
  }

  function watch(root) {
    var url = root.getAttribute("data-live-url");
    var started = Date.now();
    var delay = INTERVAL_MS;
    function poll() {
      if (Date.now() - started > DEADLINE_MS) { root.classList.add("live-stopped"); return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (response.status === 429) { delay = Math.min(delay * 2, 10000); return null; }
          if (!response.ok) { root.classList.add("live-stopped"); return "stop"; }
          delay = INTERVAL_MS;
          return response.json();
        })
        .then(function (live) {
          if (live === "stop") { return; }
          if (live) {
            setField(root, "status", live.status);
            if (live.version !== undefined) {
              setField(root, "version", live.version);
              // the cancel form keeps the version the page was loaded at (its If-Match):
              // say that the sale moved, so a cancel now is refused and shows the conflict
              var loaded = root.getAttribute("data-loaded-version");
              var moved = root.querySelector("[data-moved]");
              if (moved && loaded !== null && String(live.version) !== loaded) { moved.hidden = false; }
            }
            if (live.attempt_count !== undefined) { setField(root, "attempt_count", live.attempt_count); }
            if (live.last_status_code !== undefined && live.last_status_code !== null) {
              setField(root, "last_status_code", live.last_status_code);
            }
            rebuildHistory(root, live.history);
            updateLines(root, live.lines);
            if (live.settled) { root.setAttribute("data-settled", "1"); return; }
          }
          window.setTimeout(poll, delay);
        })
        .catch(function () { window.setTimeout(poll, delay * 2); });
    }
    window.setTimeout(poll, INTERVAL_MS);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var roots = document.querySelectorAll("[data-live-url]:not([data-settled])");
    for (var i = 0; i < roots.length; i++) { watch(roots[i]); }
  });
})();
