// The resource tree tab: the page's poller re-reads the tree with the filters and view the tab shows (the
// tab's URL keeps them), and the resource panel closes on its × button or Escape.
document.addEventListener("htmx:configRequest", (event) => {
  if (!event.target.matches("[data-live-poll]")) return;
  const view = document.querySelector("#app-tree [data-live-query]");
  if (!view) return;
  for (const [key, value] of new URLSearchParams(view.dataset.liveQuery)) {
    if (key !== "tab") event.detail.parameters[key] = value;
  }
});
function closeResourcePanel() {
  const panel = document.getElementById("resource-panel");
  if (panel && !panel.classList.contains("resource-page")) panel.replaceChildren();
}
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-panel-close]")) {
    event.preventDefault();
    const panel = document.getElementById("resource-panel");
    if (panel?.classList.contains("resource-page")) history.back();
    else closeResourcePanel();
  }
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !document.querySelector("dialog[open]")) closeResourcePanel();
});
