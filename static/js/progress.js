// Polls a long job's progress (a rescore, a CSV import, a backtest) from the JSON at the bar's
// data-url and moves the bar. data-reload says when to reload the page to show the job's results:
// "finished" (whatever the outcome), "done" (only a success) or nothing (never). A static file,
// not an inline script: the pages run under a Content-Security-Policy without 'unsafe-inline'.
(function () {
  const bar = document.querySelector(".progress[data-url]");
  if (!bar || bar.dataset.finished === "1") return;
  const fill = bar.querySelector(".progress-bar");
  const field = (name) => document.querySelector(`[data-field="${name}"]`);
  const show = (name, text) => {
    const element = field(name);
    if (element) element.textContent = text;
  };
  const labels = { running: "Running", done: "Done", failed: "Failed" };
  async function poll() {
    try {
      const response = await fetch(bar.dataset.url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const progress = await response.json();
        fill.style.width = `${progress.percent}%`;
        bar.setAttribute("aria-valuenow", progress.percent);
        show("percent", progress.percent);
        show("processed", Number(progress.processed).toLocaleString("en-US"));
        show("status", progress.status_label || labels[progress.status] || progress.status);
        const stalled = field("stalled");
        if (stalled) stalled.hidden = !progress.stalled;
        const finished = progress.finished ?? ["done", "failed"].includes(progress.status);
        if (finished) {
          const reload = bar.dataset.reload;
          if (reload === "finished" || (reload === "done" && progress.status === "done")) {
            window.location.reload();
          }
          return;
        }
      }
    } catch (error) {
      // A dropped request is retried on the next tick.
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
