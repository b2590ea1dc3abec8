// accelpool dashboard: keep the page current without reloading it. Every few seconds (the body's
// data-live) fetch this same address with "X-Live: 1"; the server answers only the contents of <main>,
// which replace the old ones. Paused while the tab is hidden or the user is typing in a form in <main>.
(function () {
  "use strict";
  var seconds = parseInt(document.body.getAttribute("data-live") || "0", 10);
  function busy(main) {
    var a = document.activeElement;
    return a && main.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName);
  }
  function openDetails(main) {
    var open = [];
    main.querySelectorAll("details").forEach(function (d, i) { if (d.open) open.push(i); });
    return open;
  }
  function follow() {  // keep the log's newest line in view
    var logs = document.getElementById("logs");
    if (logs) { logs.scrollTop = logs.scrollHeight; }
  }
  function refresh() {
    var main = document.getElementById("main");
    if (!main || document.hidden || busy(main)) return;
    fetch(location.href, { headers: { "X-Live": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok || r.redirected) return null;
        return r.text();
      })
      .then(function (html) {
        if (html === null || busy(main)) return;
        var open = openDetails(main);
        var logs = document.getElementById("logs");
        var atEnd = logs && logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
        main.innerHTML = html;
        main.querySelectorAll("details").forEach(function (d, i) { if (open.indexOf(i) >= 0) d.open = true; });
        if (atEnd) follow();
        bind();
      })
      .catch(function () { /* the next tick tries again */ });
  }
  function bind() {
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      if (f.dataset.bound) return;
      f.dataset.bound = "1";
      f.addEventListener("submit", function (e) {
        if (!window.confirm(f.getAttribute("data-confirm"))) e.preventDefault();
      });
    });
  }
  bind();
  follow();
  if (seconds > 0) window.setInterval(refresh, seconds * 1000);
})();
