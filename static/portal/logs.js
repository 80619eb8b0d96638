// The logs tab (templates/applications/tabs/logs.html loads it each time the tab is swapped in): live follow over
// server-sent events, and the full-screen switch.
(() => {
  if (!window.portalLogsReady) {
    window.portalLogsReady = true;
    // Full screen: the viewer covers the window (a class, so it works wherever the Fullscreen API is refused);
    // Escape or the button again leaves it.
    const toggle = (on) => {
      const viewer = document.getElementById("logs-viewer");
      if (!viewer) return;
      const full = on === undefined ? !viewer.classList.contains("fullscreen") : on;
      viewer.classList.toggle("fullscreen", full);
      const button = viewer.querySelector("[data-logs-fullscreen]");
      if (button) button.textContent = full ? "Exit full screen" : "Full screen";
    };
    document.addEventListener("click", (event) => {
      if (event.target.closest("[data-logs-fullscreen]")) toggle();
    });
    document.addEventListener("keydown", (event) => { if (event.key === "Escape") toggle(false); });
  }

  // Live logs; text is appended as text nodes, never parsed as HTML.
  const pre = document.getElementById("logs-live");
  if (!pre || pre.dataset.started) return;
  pre.dataset.started = "1";
  const prefix = pre.dataset.prefix === "1";
  const timestamps = pre.dataset.timestamps === "1";
  const source = new EventSource(pre.dataset.src);
  const append = (head, cls, text) => {
    if (head) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = head;
      pre.append(span, " ");
    }
    if (text !== undefined) pre.append(text);
  };
  source.onmessage = (event) => {
    const line = JSON.parse(event.data);
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    if (prefix) append(line.src || line.pod, "log-src");
    if (timestamps && line.ts) append(line.ts, "log-ts");
    pre.append(line.content + "\n");
    if (atEnd) pre.scrollTop = pre.scrollHeight;  // keep following unless the reader scrolled up
  };
  source.addEventListener("end", (event) => { source.close(); pre.append("— " + JSON.parse(event.data) + "\n"); });
  const stop = (event) => { if (!document.body.contains(pre) || event.detail.target.contains(pre)) { source.close(); document.body.removeEventListener("htmx:beforeSwap", stop); } };
  document.body.addEventListener("htmx:beforeSwap", stop);
})();
