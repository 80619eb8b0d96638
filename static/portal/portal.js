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
