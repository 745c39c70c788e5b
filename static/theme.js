// Applies the theme the reader chose (stored by the toggle in relay.js) before the page paints.
// Without a choice, relay.css follows the system's light or dark setting.
(function () {
  try {
    var theme = localStorage.getItem("relay-theme");
    if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  } catch (e) { /* storage blocked: follow the system */ }
})();
