// ispd console: the live "Now" page and the print button. No dependencies.
"use strict";
(function () {
  var live = document.getElementById("live");
  if (live) {
    var url = live.getAttribute("data-live");
    var busy = false;
    var last = "";
    setInterval(function () {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(url, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (r.status === 401 || r.redirected) { window.location.assign("/"); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          if (html !== null && html !== last) {
            last = html;
            // Keep keyboard focus on the same link across the refresh.
            var focused = live.contains(document.activeElement) ? document.activeElement.getAttribute("href") : null;
            // Keep open what the operator opened (the charts' numbers).
            var open = Array.prototype.map.call(live.querySelectorAll("details[open][id]"), function (d) { return d.id; });
            live.innerHTML = html;
            open.forEach(function (id) {
              var d = document.getElementById(id);
              if (d) { d.open = true; }
            });
            if (focused) {
              var again = live.querySelector('a[href="' + focused + '"]');
              if (again) { again.focus(); }
            }
          }
        })
        .catch(function () { /* the daemon is restarting: try again next second */ })
        .then(function () { busy = false; });
    }, 1000);
  }
  var print = document.querySelector("[data-print]");
  if (print) {
    print.addEventListener("click", function () { window.print(); });
  }
})();
