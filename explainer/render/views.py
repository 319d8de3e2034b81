"""A second view inside the step-through page (`explainer.render.html`): the training page.

`add_view` adds a header link that switches the page between the step-through and
the new view (its own ``#id`` opens it directly), so one offline file holds both.
"""

from __future__ import annotations

import html

from ..text import t

VIEW_CSS = """
.eg-views { margin-left: auto; display: flex; gap: 6px; }
.eg-views a { font-size: 15px; padding: 4px 12px; border: 1px solid var(--line); border-radius: 6px;
  color: var(--fg); text-decoration: none; background: var(--panel); }
.eg-views a.on { border-color: var(--fwd); color: var(--fwd); font-weight: bold; }
section.eg-view { flex: 1; overflow: auto; padding: 14px 20px; }
section.eg-view[hidden] { display: none; }
body.eg-other > nav, body.eg-other > #eg-caption, body.eg-other > main { display: none; }
"""

VIEW_JS = r"""
(function () {
  "use strict";
  var views = Array.prototype.slice.call(document.querySelectorAll("section.eg-view"));
  var links = Array.prototype.slice.call(document.querySelectorAll(".eg-views a"));
  function go(hash) {
    var id = (hash || "").replace(/^#/, "");
    var other = views.some(function (v) { return v.id === id; });
    views.forEach(function (v) { v.hidden = v.id !== id; });
    document.body.classList.toggle("eg-other", other);
    links.forEach(function (a) { a.classList.toggle("on", a.getAttribute("href") === (other ? "#" + id : "#")); });
  }
  window.addEventListener("hashchange", function () { go(location.hash); });
  go(location.hash);
})();
"""


def add_view(page: str, view_id: str, link: str, body: str, lang: str = "en") -> str:
    """Add a second view to a page made by `build_html` (the training page): a header link
    switches between the step-through and it (``#view_id`` opens it directly)."""
    e = html.escape
    if "eg-views" not in page:
        nav = (
            f'<span class="eg-views"><a href="#" class="on">{e(t("title", lang))}</a>'
            f'<a href="#{e(view_id)}">{e(link)}</a></span>'
        )
        page = page.replace("</header>", nav + "</header>", 1)
        page = page.replace("</style>", VIEW_CSS + "</style>", 1)
        page = page.replace("</body>", f"<script>{VIEW_JS}</script>\n</body>", 1)
    else:
        page = page.replace("</span></header>", f'<a href="#{e(view_id)}">{e(link)}</a></span></header>', 1)
    section = f'<section class="eg-view" id="{e(view_id)}" hidden>{body}</section>\n'
    return page.replace("<script>", section + "<script>", 1)


__all__ = ["add_view"]
