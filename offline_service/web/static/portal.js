// The main menu folds away behind its button on phones (the CSS hides the menu there while the
// button says it is collapsed). Without this script the button stays hidden and the menu open.
"use strict";

(() => {
  const button = document.querySelector(".menu-button");
  const menu = button && document.getElementById(button.getAttribute("aria-controls"));
  if (!menu) {
    return;
  }
  const toggle = (open) => button.setAttribute("aria-expanded", String(open));
  toggle(false);
  button.hidden = false;
  button.addEventListener("click", () => toggle(button.getAttribute("aria-expanded") !== "true"));
  // Escape closes the open menu from anywhere in it and puts the focus back on its button.
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
      toggle(false);
      button.focus();
    }
  });
})();
