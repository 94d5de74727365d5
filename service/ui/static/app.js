// The workbench's own script: evidence highlighting both ways and keyboard shortcuts.
// Loaded from this origin (the CSP allows no inline script); every handler is delegated from
// the document, so it keeps working after htmx swaps a part of the page.
"use strict";
(function () {
  function $(selector, root) { return (root || document).querySelector(selector); }
  function $$(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }
  function announce(text) { var live = $("#live"); if (live) { live.textContent = text; } }
  function attr(value) { return window.CSS && CSS.escape ? CSS.escape(value) : value.replace(/"/g, '\\"'); }

  // -- evidence: click a code, see its spans; click a span, see its codes -------------------------
  function clearActive() {
    $$(".active").forEach(function (el) { el.classList.remove("active"); });
    $$(".code-link[aria-pressed='true']").forEach(function (el) { el.setAttribute("aria-pressed", "false"); });
  }
  function showCode(code) {
    clearActive();
    var marks = $$('mark[data-testid="evidence"][data-code="' + attr(code) + '"]');
    marks.forEach(function (m) { m.classList.add("active"); });
    $$('.code-link[data-code="' + attr(code) + '"]').forEach(function (b) { b.setAttribute("aria-pressed", "true"); });
    $$('[data-testid="code-row"][data-code="' + attr(code) + '"]').forEach(function (r) { r.classList.add("active"); });
    if (marks.length) { marks[0].scrollIntoView({ block: "center", behavior: "smooth" }); }
    var out = $("#span-codes");
    var message = marks.length ? code + ": " + marks.length + " evidence span" + (marks.length === 1 ? "" : "s") + " highlighted"
                               : code + ": no evidence span in the note";
    if (out) { out.textContent = message; }
    announce(message);
  }
  function showSpan(mark) {
    clearActive();
    var codes = [];
    for (var el = mark; el && el.tagName === "MARK"; el = el.parentElement) {
      if (el.dataset.code && codes.indexOf(el.dataset.code) < 0) { codes.push(el.dataset.code); }
    }
    var span = mark.dataset.span;
    $$('mark[data-span="' + attr(span) + '"]').forEach(function (m) { m.classList.add("active"); });
    codes.forEach(function (code) {
      $$('[data-testid="code-row"][data-code="' + attr(code) + '"], [data-testid="consider-item"][data-code="' + attr(code) + '"], [data-testid="query-flag"][data-code="' + attr(code) + '"]')
        .forEach(function (r) { r.classList.add("active"); });
    });
    var first = $('[data-testid="code-row"].active, [data-testid="consider-item"].active');
    if (first) { first.scrollIntoView({ block: "nearest", behavior: "smooth" }); }
    var message = "This span supports " + codes.join(", ");
    var out = $("#span-codes");
    if (out) { out.textContent = message; }
    announce(message);
  }
  document.addEventListener("click", function (event) {
    var link = event.target.closest(".code-link");
    if (link) { showCode(link.dataset.code); return; }
    var mark = event.target.closest('mark[data-testid="evidence"]');
    if (mark) { showSpan(mark); return; }
    var use = event.target.closest(".use-code");
    if (use) {
      var input = $("#add-code-input");
      if (input) {
        input.value = use.dataset.code;
        input.focus();
        input.dispatchEvent(new Event("input", { bubbles: true }));
      }
      return;
    }
    if (event.target.closest('[data-action="shortcuts"]')) { openShortcuts(); }
  });

  // -- keyboard ----------------------------------------------------------------------------------
  function openShortcuts() { var d = $("#shortcuts"); if (d && !d.open) { d.showModal(); } }
  function page() { var main = $("#main"); return main ? main.dataset.page : ""; }
  function rows() { return $$('[data-testid="code-row"]'); }
  function current() { return $('[data-testid="code-row"].selected') || null; }
  function select(row) {
    $$('[data-testid="code-row"].selected').forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); });
    if (!row) { return; }
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
    announce(row.dataset.code + ", " + row.dataset.status);
  }
  function step(list, selected, delta) {
    var i = list.indexOf(selected);
    var next = list[Math.max(0, Math.min(list.length - 1, i < 0 ? 0 : i + delta))];
    return next;
  }
  function click(selector, root) { var el = $(selector, root); if (el && !el.disabled) { el.click(); return true; } return false; }
  var pendingG = false;

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var target = event.target;
    if (target.closest("input, textarea, select, [contenteditable], dialog")) {
      if (event.key === "Escape" && target.blur) { target.blur(); }
      return;
    }
    var key = event.key;
    if (key === "Enter" && target.matches && target.matches('mark[data-testid="evidence"]')) { showSpan(target); event.preventDefault(); return; }
    if (key === "?") { openShortcuts(); event.preventDefault(); return; }
    if (pendingG) {
      pendingG = false;
      if (key === "w") { window.location.assign("/ui/worklist"); event.preventDefault(); }
      return;
    }
    if (key === "g") { pendingG = true; return; }
    if (page() === "worklist") {
      var items = $$('[data-testid="worklist-item"] a.open');
      if (key === "j" || key === "k") {
        var i = items.indexOf(document.activeElement);
        var next = items[Math.max(0, Math.min(items.length - 1, i < 0 ? 0 : i + (key === "j" ? 1 : -1)))];
        if (next) { next.focus(); }
        event.preventDefault();
      }
      return;
    }
    if (page() !== "review") { return; }
    var row = current();
    switch (key) {
      case "j": case "k":
        select(step(rows(), row, key === "j" ? 1 : -1)); break;
      case "a": if (row) { click('[data-testid="accept"]', row); } break;
      case "r": if (row) { click('[data-testid="reject"]', row); } break;
      case "m":
        if (row) { var details = $("details.more", row); if (details) { details.open = true; var input = $('[data-testid="modify-input"]', row); if (input) { input.focus(); } } }
        break;
      case "e": if (row) { showCode(row.dataset.code); } break;
      case "[": if (row) { click('button[value="up"]', row); } break;
      case "]": if (row) { click('button[value="down"]', row); } break;
      case "/": var add = $("#add-code-input"); if (add) { add.focus(); } break;
      case "q":
        var draft = $("#query-new");
        if (draft) { draft.open = true; var first = $("select, input, textarea", draft); if (first) { first.focus(); } }
        break;
      case "s": click("#submit-review"); break;
      default: return;
    }
    event.preventDefault();
  });

  // Keep the selected line (and the focus) where it was when htmx replaces the page's main part.
  var remembered = null;
  document.addEventListener("htmx:beforeRequest", function () {
    var row = current() || (document.activeElement && document.activeElement.closest && document.activeElement.closest('[data-testid="code-row"]'));
    remembered = row ? row.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (remembered) {
      var row = document.getElementById(remembered);
      if (row) { select(row); }
      remembered = null;
    }
    var error = $('[role="alert"]');
    if (error) { announce(error.textContent); }
  });
})();
