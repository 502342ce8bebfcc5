// Copy buttons: each .copy button puts its data-copy text on the
// clipboard and says so. One listener serves the buttons of rows added
// later (the live event log). Without JavaScript the ids stay readable
// and selectable, in full in their titles.
(function () {
  "use strict";
  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "sr-only";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    area.remove();
    return ok;
  }
  function done(button, ok) {
    button.classList.add(ok ? "copied" : "copy-failed");
    button.dataset.state = ok ? "copied" : "failed";
    var label = button.getAttribute("aria-label");
    button.setAttribute("aria-label", ok ? "Copied" : "Copy failed");
    setTimeout(function () {
      button.classList.remove("copied", "copy-failed");
      button.setAttribute("aria-label", label);
    }, 1500);
  }
  document.addEventListener("click", function (ev) {
    var button = ev.target.closest && ev.target.closest("button.copy");
    if (!button) return;
    ev.preventDefault();
    var text = button.dataset.copy || "";
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(button, true); },
        function () { done(button, fallback(text)); });
    } else {
      done(button, fallback(text));
    }
  });
})();
