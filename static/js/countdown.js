// Live SLA countdowns in business time: the server says how many business seconds are left and
// whether the clock runs now; we tick while it runs, and reload when it opens or closes. The
// wording repeats leads/sla_text.py: "3 business hours left", "27 business hours overdue", and
// the calendar time in the title.
(function () {
  "use strict";
  function plural(count, unit) { return count + " " + unit + (count === 1 ? "" : "s"); }
  function businessText(seconds) {
    var total = Math.trunc(Math.abs(seconds));
    var amount = total >= 3600 ? plural(Math.floor(total / 3600), "business hour")
      : plural(Math.floor(total / 60), "business minute");
    return seconds < 0 ? amount + " overdue" : amount + " left";
  }
  function calendarAmount(seconds) {
    var total = Math.trunc(Math.abs(seconds));
    var days = Math.floor(total / 86400), hours = Math.floor((total % 86400) / 3600);
    var minutes = Math.floor((total % 3600) / 60);
    if (days) { return plural(days, "day") + (hours ? " " + plural(hours, "hour") : ""); }
    if (hours) { return plural(hours, "hour") + (minutes ? " " + plural(minutes, "minute") : ""); }
    return plural(minutes, "minute");
  }
  function calendarText(secondsToDue) {
    return secondsToDue < 0 ? "due " + calendarAmount(secondsToDue) + " ago (calendar time)"
      : "due in " + calendarAmount(secondsToDue) + " (calendar time)";
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
      if (el.dataset.due) {
        var title = "Business hours of the SLA calendar; "
          + calendarText(Number(el.dataset.due) - Date.now() / 1000);
        el.title = el.dataset.running === "1" ? title
          : title + " (clock paused outside working hours)";
      }
      if (el.dataset.running !== "1") { return; }
      var left = Number(el.dataset.seconds) - elapsed;
      el.textContent = businessText(left);
      el.classList.toggle("overdue", left < 0);
    });
    if (Date.now() >= reloadAt && !document.hidden) { window.location.reload(); }
  }
  if (clocks.length) { setInterval(tick, 1000); }
})();
