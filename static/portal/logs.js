// The logs tab's live follow (templates/applications/tabs/logs.html loads it each time the tab is swapped in).
(() => {
  // Live logs over server-sent events; text is appended as text nodes, never parsed as HTML.
  const pre = document.getElementById("logs-live");
  if (!pre || pre.dataset.started) return;
  pre.dataset.started = "1";
  const source = new EventSource(pre.dataset.src);
  source.onmessage = (event) => { pre.append(JSON.parse(event.data).content + "\n"); pre.scrollTop = pre.scrollHeight; };
  source.addEventListener("end", (event) => { source.close(); pre.append("— " + JSON.parse(event.data) + "\n"); });
  const stop = (event) => { if (!document.body.contains(pre) || event.detail.target.contains(pre)) { source.close(); document.body.removeEventListener("htmx:beforeSwap", stop); } };
  document.body.addEventListener("htmx:beforeSwap", stop);
})();
