// Live SLA countdowns in business time: the server says how many business seconds are left and
// whether the clock runs now; we tick while it runs, and reload when it opens or closes.
(function () {
  "use strict";
  function format(seconds) {
    var total = Math.abs(Math.trunc(seconds));
    var days = Math.floor(total / 86400), hours = Math.floor((total % 86400) / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    var text = days ? days + "d " + hours + "h"
      : hours ? hours + "h " + String(minutes).padStart(2, "0") + "m" : minutes + "m";
    return seconds < 0 ? "overdue " + text : text + " left";
  }
  var started = Date.now();
  var clocks = Array.prototype.slice.call(document.querySelectorAll(".countdown[data-seconds]"));
  var reloadAt = Infinity;
  clocks.forEach(function (el) {
    var changesAt = Number(el.dataset.changesAt) * 1000;
    if (changesAt) { reloadAt = Math.min(reloadAt, changesAt); }
  });
  function tick() {
    var elapsed = (Date.now() - started) / 1000;
    clocks.forEach(function (el) {
      if (el.dataset.running !== "1") { return; }
      var left = Number(el.dataset.seconds) - elapsed;
      el.textContent = format(left);
      el.classList.toggle("overdue", left < 0);
    });
    if (Date.now() >= reloadAt && !document.hidden) { window.location.reload(); }
  }
  if (clocks.length) { setInterval(tick, 1000); }
})();
