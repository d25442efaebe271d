// Polls a CSV import's progress (same pattern as job-progress.js) and reloads the page with the
// report once the import has finished. A static file, not an inline script: the pages run under
// a Content-Security-Policy without 'unsafe-inline'.
(function () {
  const bar = document.querySelector(".progress");
  if (!bar || bar.dataset.finished === "1") return;
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
        field("processed").textContent = progress.processed.toLocaleString();
        field("status").textContent = progress.status_label;
        if (progress.finished) { window.location.reload(); return; }
      }
    } catch (error) {
      // A dropped request is retried on the next tick.
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
