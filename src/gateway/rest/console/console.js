// zgate web console: confirmations for destructive commands and the live console
// (server-sent events). No inline script: the page's Content-Security-Policy
// allows only this file.
"use strict";
document.addEventListener("submit", (e) => {
  const question = e.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    e.preventDefault();
  }
});
window.addEventListener("DOMContentLoaded", () => {
  const list = document.getElementById("live");
  if (!list) {
    return;
  }
  const source = new EventSource(list.getAttribute("data-source"));
  source.addEventListener("message", (e) => {
    let m;
    try {
      m = JSON.parse(e.data);
    } catch (_) {
      return;
    }
    const item = document.createElement("li");
    item.className = "sev-" + String(m.msg || "").slice(-1);
    // Text only: messages hold user text (session names, comments).
    item.textContent = m.msgTranslated || "";
    list.insertBefore(item, list.firstChild);
    // The background copy's end fills the session page's bar.
    const bar = document.getElementById("progress");
    if (bar && m.msg === "IWNR2772I") {
      bar.value = bar.max;
      bar.textContent = "complete";
    }
    while (list.children.length > 200) {
      list.removeChild(list.lastChild);
    }
  });
});
