// Polls the rescore job's progress and moves the bar until the job is done.
(function () {
  const bar = document.querySelector(".progress");
  if (!bar) return;
  const fill = bar.querySelector(".progress-bar");
  const field = (name) => document.querySelector(`[data-field="${name}"]`);
  async function poll() {
    try {
      const response = await fetch(bar.dataset.url, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const progress = await response.json();
        fill.style.width = `${progress.percent}%`;
        bar.setAttribute("aria-valuenow", progress.percent);
        field("percent").textContent = progress.percent;
        field("processed").textContent = progress.processed;
        field("status").textContent = progress.status === "done" ? "Done" : "Running";
        if (progress.status === "done") return;
      }
    } catch (error) {
      // A dropped request is retried on the next tick.
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
