/* Injected by book/check.py into a copy of each page: measures the page as
   Chromium laid it out and posts the findings to the page that holds it in
   a frame, whose DOM `chromium --dump-dom` hands back. */
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) {
      errors.push("failed to load " + (t.getAttribute("src") || t.getAttribute("href")));
    } else {
      errors.push("javascript error: " + (e.message || "unknown"));
    }
  }, true);
  function text(el) { return (el.textContent || "").replace(/\n$/, ""); }
  function where(el) {
    var t = text(el).split("\n")[0].trim();
    return "`" + (t.length > 60 ? t.slice(0, 60) + "..." : t) + "`";
  }
  // A box that scrolls sideways must say so: book.css gives it shadows at
  // its edges (gradients in its background, the covers scrolling with the
  // content), which a phone shows even where scrollbars are hidden.
  function cue(el) {
    var cs = getComputedStyle(el);
    return cs.backgroundImage.indexOf("gradient") >= 0 && cs.backgroundAttachment.indexOf("local") >= 0;
  }
  function check() {
    var found = errors.slice(), images = [];
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
      } else if (pre.scrollWidth > pre.clientWidth + 1 && !cue(pre)) {
        found.push("pre " + where(pre) + ": scrolls sideways (" + pre.scrollWidth + " px in " +
                   pre.clientWidth + ") with no visible cue (no edge shadow in its background)");
      }
      var lines = text(pre).split("\n").length;
      var tops = {}, walk = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT), node;
      while ((node = walk.nextNode())) {
        var range = document.createRange();
        range.selectNodeContents(node);
        var rects = range.getClientRects();
        for (var r = 0; r < rects.length; r++) {
          if (rects[r].width > 0) { tops[Math.round(rects[r].top)] = true; }
        }
      }
      var boxes = Object.keys(tops).length;
      if (boxes > lines) {
        found.push("pre " + where(pre) + ": " + lines + " lines take " + boxes + " line boxes: a line wraps");
      }
    }
    var imgs = document.querySelectorAll("img");
    for (var j = 0; j < imgs.length; j++) {
      var img = imgs[j];
      if (!img.complete || img.naturalWidth === 0) {
        found.push("image " + img.getAttribute("src") + " did not load");
      } else {
        images.push([img.getAttribute("src"), img.getBoundingClientRect().width, img.naturalWidth]);
        var box = img.closest("figure") || img.parentElement;
        if (img.getBoundingClientRect().right > document.documentElement.clientWidth + 1 &&
            !(box && box.scrollWidth > box.clientWidth + 1)) {
          found.push("image " + img.getAttribute("src") + " is wider than the page");
        }
      }
    }
    var figs = document.querySelectorAll("figure");
    for (var k = 0; k < figs.length; k++) {
      var f = figs[k], fs = getComputedStyle(f);
      if (f.scrollWidth > f.clientWidth + 1 && fs.overflowX !== "auto" && fs.overflowX !== "scroll") {
        found.push("figure " + (f.querySelector("img") || f).getAttribute("src") + " is wider than its box");
      } else if (f.scrollWidth > f.clientWidth + 1 && !cue(f)) {
        found.push("figure " + (f.querySelector("img") || f).getAttribute("src") +
                   " scrolls sideways with no visible cue");
      }
    }
    if (document.documentElement.scrollWidth > document.documentElement.clientWidth + 1) {
      found.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " px in a window of " +
                 document.documentElement.clientWidth + " px");
    }
    // the page is loaded in a frame per width; check.py's page writes this down
    window.parent.postMessage(JSON.stringify({ found: found, images: images,
                                               width: document.documentElement.clientWidth }), "*");
  }
  window.addEventListener("load", function () { setTimeout(check, 50); });
})();
