// Small behaviours that HTMX attributes cannot express: open and close confirmation dialogs.
document.addEventListener("click", (event) => {
  const opener = event.target.closest("[data-dialog-open]");
  if (opener) {
    event.preventDefault();
    document.getElementById(opener.dataset.dialogOpen)?.showModal();
  }
  const closer = event.target.closest("[data-dialog-close]");
  if (closer) {
    event.preventDefault();
    closer.closest("dialog")?.close();
  }
});
// A dialog asking for a name to be typed keeps its submit button disabled until it matches.
document.addEventListener("input", (event) => {
  const input = event.target.closest("[data-confirm-name]");
  if (!input) return;
  const button = input.form?.querySelector("[data-confirm-submit]");
  if (button) button.disabled = input.value !== input.dataset.confirmName;
});
// A refused or failed HTMX request (403, 404, 500…) swaps nothing by default: say so at the top of the page,
// with the portal's own explanation when the answer carries one.
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  const page = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
  const reason = page.querySelector("main article p")?.textContent?.trim().replace(/\.$/, "");
  const note = document.createElement("p");
  note.className = "flash flash-error";
  note.setAttribute("role", "alert");
  note.textContent = `Not done (${xhr.status}): ${reason || xhr.statusText || "the portal refused the request"}. Reload the page to see where things stand.`;
  document.querySelector("dialog[open]")?.close();
  document.querySelector("main")?.prepend(note);
  note.scrollIntoView({ block: "nearest" });
});
// A form in a dialog closes the dialog when its HTMX request ends: data-close-dialog="always", or "success" to
// keep a refused form open with its errors. (Listeners here, not hx-on attributes: those need eval, which the
// Content-Security-Policy forbids.)
document.addEventListener("htmx:afterRequest", (event) => {
  const form = event.detail.elt;
  const when = form?.dataset?.closeDialog;
  if (!when || (when === "success" && !event.detail.successful)) return;
  form.closest("dialog")?.close();
});
// A list that re-reads itself (data-poll-unless-checked) skips a round while the tab is hidden or while rows of
// it are ticked, so a refresh never drops a selection.
document.addEventListener("htmx:confirm", (event) => {
  const list = event.detail.elt;
  if (!list?.hasAttribute?.("data-poll-unless-checked")) return;
  if (document.hidden || list.querySelector(":checked")) event.preventDefault();
});
// The application page's poller ([data-live-poll]) sends the versions of what the page shows, so an unchanged
// app costs an empty answer. It skips a tick while the tab is hidden, a dialog is open or someone is typing in a
// part it would replace, and catches up at once when the tab is shown again.
document.addEventListener("htmx:confirm", (event) => {
  if (!event.target.matches("[data-live-poll]")) return;
  const focused = document.activeElement;
  const typing = focused?.closest("[data-live-region]") && focused.matches("input, select, textarea");
  if (document.visibilityState !== "visible" || document.querySelector("dialog[open]") || typing) {
    event.preventDefault();
  }
});
document.addEventListener("htmx:configRequest", (event) => {
  if (!event.target.matches("[data-live-poll]")) return;
  const summary = document.getElementById("app-summary");
  const tree = document.getElementById("app-tree");
  if (summary) event.detail.parameters.v = summary.dataset.liveVersion;
  if (tree) event.detail.parameters.tree = tree.dataset.liveVersion;
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && document.querySelector("[data-live-poll]")) {
    document.body.dispatchEvent(new Event("app-changed"));
  }
});
