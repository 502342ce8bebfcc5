// Live events: follows /ui/events/stream (the server relays the API's event
// stream with the session's token) and puts each new event at the top of
// the table, keeping the page at its size: the oldest rows leave at the
// bottom, and the link to older events moves with them, so paging on
// skips nothing. Without JavaScript the page still shows the newest events.
(function () {
  "use strict";
  var table = document.getElementById("events");
  var live = document.getElementById("live");
  var older = document.getElementById("older");
  if (!table || !live || !table.dataset.stream || !window.EventSource) return;
  var body = table.tBodies[0];
  var size = parseInt(table.dataset.page, 10) || 50;

  function cell(row, label, text, cls) {
    var td = row.insertCell(-1);
    td.dataset.label = label;
    if (cls) td.className = cls;
    if (text !== undefined) td.textContent = text;
    return td;
  }
  // id builds what the page's "id" template does: the id, cut short with
  // an ellipsis where space is short, its whole self in the title, and a
  // copy button.
  var icon = '<svg viewBox="0 0 16 16" aria-hidden="true" focusable="false"><rect x="5" y="5" width="9" height="9" rx="1.5"/><path d="M3 11V3a1 1 0 0 1 1-1h7"/></svg>';
  function id(value, href) {
    var wrap = document.createElement("span");
    wrap.className = "id";
    var text = document.createElement(href ? "a" : "span");
    text.className = "id-text";
    if (href) text.href = href;
    text.title = value;
    text.textContent = value;
    var copy = document.createElement("button");
    copy.type = "button";
    copy.className = "copy";
    copy.dataset.copy = value;
    copy.title = "Copy " + value;
    copy.setAttribute("aria-label", "Copy " + value);
    copy.innerHTML = icon;
    wrap.appendChild(text);
    wrap.appendChild(copy);
    return wrap;
  }
  function json(v) { return v === undefined || v === null ? "" : JSON.stringify(v); }
  function change(e) {
    var before = json(e.before), after = json(e.after), s = after;
    if (before && after) s = before + " → " + after;
    else if (before) s = before + " → (gone)";
    return s.length > 200 ? s.slice(0, 200) + "…" : s;
  }

  var source = new EventSource(table.dataset.stream);
  source.onopen = function () { live.textContent = "Live: new events appear at the top."; };
  source.onerror = function () {
    live.textContent = source.readyState === EventSource.CLOSED ?
      "Live updates stopped; reload the page." : "Live updates interrupted; reconnecting…";
  };
  source.onmessage = function (m) {
    var e = JSON.parse(m.data);
    var empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    var row = body.insertRow(0);
    row.className = "fresh";
    cell(row, "#", String(e.seq), "num");
    var time = document.createElement("time");
    time.dateTime = e.time;
    time.textContent = e.time.replace("T", " ").slice(0, 19) + "Z";
    cell(row, "Time").appendChild(time);
    cell(row, "Type", e.type);
    var t = cell(row, "Tenant");
    if (e.tenant) t.appendChild(id(e.tenant, "/ui/tenants/" + encodeURIComponent(e.tenant)));
    var s = cell(row, "Subject");
    if (e.subject) s.appendChild(id(e.subject));
    var actor = cell(row, "Actor", e.actor + " ", "actor");
    var role = document.createElement("span");
    role.className = "muted";
    role.textContent = "(" + e.role + ")";
    actor.appendChild(role);
    if (e.reason) {
      var reason = document.createElement("span");
      reason.className = "muted";
      reason.textContent = e.reason;
      actor.appendChild(document.createElement("br"));
      actor.appendChild(reason);
    }
    var code = document.createElement("code");
    code.textContent = change(e);
    cell(row, "Change", undefined, "change").appendChild(code);
    if (body.rows.length > size) {
      while (body.rows.length > size) body.deleteRow(-1);
      if (older) {
        var last = body.rows[body.rows.length - 1].cells[0].textContent;
        older.href = older.dataset.base + last;
        older.hidden = false;
      }
    }
  };
})();
