// Live events: follows /ui/events/stream (the server relays the API's event
// stream with the session's token) and puts each new event at the top of
// the table. Without JavaScript the page still shows the newest events.
(function () {
  "use strict";
  var table = document.getElementById("events");
  var live = document.getElementById("live");
  if (!table || !window.EventSource) return;
  var body = table.tBodies[0];

  function cell(row, label, text, cls) {
    var td = row.insertCell(-1);
    td.dataset.label = label;
    if (cls) td.className = cls;
    if (text !== undefined) td.textContent = text;
    return td;
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
    cell(row, "Time", e.time.replace("T", " ").slice(0, 19) + "Z");
    cell(row, "Type", e.type);
    var t = cell(row, "Tenant");
    if (e.tenant) {
      var a = document.createElement("a");
      a.href = "/ui/tenants/" + encodeURIComponent(e.tenant);
      a.textContent = e.tenant;
      t.appendChild(a);
    }
    cell(row, "Subject", e.subject || "");
    var actor = cell(row, "Actor", e.actor + " ");
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
    cell(row, "Change").appendChild(code);
    while (body.rows.length > 200) body.deleteRow(-1);
  };
})();
