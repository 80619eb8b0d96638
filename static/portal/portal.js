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
