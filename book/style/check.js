/* Injected by book/check.py into a copy of each page: measures the page as
   Chromium laid it out and writes the findings into the DOM, where
   `chromium --dump-dom` hands them back. */
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    errors.push("javascript error: " + (e.message || (e.target && (e.target.src || e.target.href)) || "unknown"));
  }, true);
  function text(el) { return (el.textContent || "").replace(/\n$/, ""); }
  function where(el) {
    var t = text(el).split("\n")[0].trim();
    return "`" + (t.length > 60 ? t.slice(0, 60) + "..." : t) + "`";
  }
  function check() {
    var found = errors.slice();
    var pres = document.querySelectorAll("pre");
    for (var i = 0; i < pres.length; i++) {
      var pre = pres[i], cs = getComputedStyle(pre);
      if (cs.whiteSpace !== "pre") {
        found.push("pre " + where(pre) + ": white-space is " + cs.whiteSpace + ", not pre");
      }
      var scrolls = cs.overflowX === "auto" || cs.overflowX === "scroll";
      if (pre.scrollWidth > pre.clientWidth + 1 && !scrolls) {
        found.push("pre " + where(pre) + ": content " + pre.scrollWidth + " px wide in a box of " +
                   pre.clientWidth + " px, with no scrollbar (overflow-x " + cs.overflowX + ")");
      }
      var lines = text(pre).split("\n").length;
      var lh = parseFloat(cs.lineHeight);
      var inner = pre.firstElementChild && pre.firstElementChild.tagName === "CODE" ? pre.firstElementChild : pre;
      var h = inner.getBoundingClientRect().height;
      if (inner === pre) { h -= parseFloat(cs.paddingTop) + parseFloat(cs.paddingBottom); }
      if (lh > 0 && h > (lines + 0.5) * lh) {
        found.push("pre " + where(pre) + ": " + lines + " lines take " + Math.round(h / lh) +
                   " line boxes: a line wraps");
      }
    }
    var imgs = document.querySelectorAll("img");
    for (var j = 0; j < imgs.length; j++) {
      var img = imgs[j];
      if (!img.complete || img.naturalWidth === 0) {
        found.push("image " + img.getAttribute("src") + " did not load");
      } else if (img.getBoundingClientRect().right > document.documentElement.clientWidth + 1) {
        found.push("image " + img.getAttribute("src") + " is wider than the page");
      }
    }
    var figs = document.querySelectorAll("figure");
    for (var k = 0; k < figs.length; k++) {
      var f = figs[k], fs = getComputedStyle(f);
      if (f.scrollWidth > f.clientWidth + 1 && fs.overflowX !== "auto" && fs.overflowX !== "scroll") {
        found.push("figure " + (f.querySelector("img") || f).getAttribute("src") + " is wider than its box");
      }
    }
    if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1) {
      found.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " px in a window of " +
                 document.documentElement.clientWidth + " px");
    }
    var out = document.createElement("pre");
    out.id = "book-check-result";
    out.setAttribute("data-checked", String(pres.length) + " pre, " + imgs.length + " images");
    out.textContent = JSON.stringify(found);
    document.body.appendChild(out);
  }
  window.addEventListener("load", function () { setTimeout(check, 50); });
})();
