// Resource forms: show only the fieldsets of the chosen authentication method. The others are hidden and
// disabled (a disabled control is neither validated nor sent); without JavaScript all are shown and the server
// ignores the fields of the methods not chosen.
(function () {
  function apply(select) {
    select.form.querySelectorAll("fieldset[data-auth]").forEach(function (fieldset) {
      const shown = fieldset.dataset.auth === select.value;
      fieldset.hidden = !shown;
      fieldset.disabled = !shown;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-auth-select]")) apply(event.target);
  });
  document.querySelectorAll("[data-auth-select]").forEach(apply);
})();
