// Keyboard shortcuts: "/" focuses the page's search box, "?" lists the shortcuts. Never while typing in a field.
(() => {
  const SHORTCUTS = [
    ["/", "Focus the search box of the page"],
    ["?", "Show this list of shortcuts"],
    ["Esc", "Close a dialog, this list included"],
  ];

  const typing = (el) => el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));

  const searchBox = () =>
    document.querySelector("main input[type=search], main input[name=q], input[type=search]");

  const shortcutsDialog = () => {
    let dialog = document.getElementById("shortcuts");
    if (dialog) return dialog;
    dialog = document.createElement("dialog");
    dialog.id = "shortcuts";
    dialog.setAttribute("aria-labelledby", "shortcuts-title");
    const article = document.createElement("article");
    const header = document.createElement("header");
    const title = document.createElement("h3");
    title.id = "shortcuts-title";
    title.textContent = "Keyboard shortcuts";
    header.append(title);
    const list = document.createElement("dl");
    list.className = "shortcuts";
    for (const [key, what] of SHORTCUTS) {
      const dt = document.createElement("dt");
      const kbd = document.createElement("kbd");
      kbd.textContent = key;
      dt.append(kbd);
      const dd = document.createElement("dd");
      dd.textContent = what;
      list.append(dt, dd);
    }
    const footer = document.createElement("footer");
    const close = document.createElement("button");
    close.type = "button";
    close.className = "secondary";
    close.textContent = "Close";
    close.addEventListener("click", () => dialog.close());
    footer.append(close);
    article.append(header, list, footer);
    dialog.append(article);
    document.body.append(dialog);
    return dialog;
  };

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target) || document.querySelector("dialog[open]:not(#shortcuts)")) return;
    if (event.key === "/") {
      const box = searchBox();
      if (!box) return;
      event.preventDefault();
      box.focus();
      box.select();
    } else if (event.key === "?") {
      event.preventDefault();
      const dialog = shortcutsDialog();
      if (dialog.open) dialog.close();
      else dialog.showModal();
    }
  });
})();
