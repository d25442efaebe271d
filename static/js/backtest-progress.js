// Polls a running backtest's progress; reloads the page to show the results once it is done.
(function () {
  const bar = document.querySelector(".progress");
  if (!bar) return;
  const fill = bar.querySelector(".progress-bar");
  const field = (name) => document.querySelector(`[data-field="${name}"]`);
  const labels = { running: "Running", done: "Done", failed: "Failed" };
  async function poll() {
    try {
      const response = await fetch(bar.dataset.url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const progress = await response.json();
        fill.style.width = `${progress.percent}%`;
        bar.setAttribute("aria-valuenow", progress.percent);
        field("percent").textContent = progress.percent;
        field("processed").textContent = progress.processed.toLocaleString("en-US");
        field("status").textContent = labels[progress.status] || progress.status;
        field("stalled").hidden = !progress.stalled;
        if (progress.status === "done") {
          window.location.reload();
          return;
        }
        if (progress.status === "failed") return;
      }
    } catch (error) {
      // A dropped request is retried on the next tick.
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
