// clusto's web interface works without this file; it only adds what
// clearly helps: the sites tree opens a node in place, fetching its
// children as a fragment, instead of loading a whole page.
"use strict";
document.addEventListener("click", async (ev) => {
  const link = ev.target.closest("a[data-fragment]");
  if (!link) return;
  const target = document.getElementById(link.dataset.fragment);
  if (!target) return;
  ev.preventDefault();
  try {
    const res = await fetch(link.href + (link.href.includes("?") ? "&" : "?") + "fragment=1", { credentials: "same-origin" });
    if (!res.ok) throw new Error(res.statusText);
    target.innerHTML = await res.text();
    link.setAttribute("aria-expanded", "true");
    link.removeAttribute("data-fragment");
  } catch (e) {
    window.location = link.href;
  }
});
