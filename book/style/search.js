/* Full-text search over the book, offline: book/build.py writes every
   section's text into search-index.js (window.BOOK_SEARCH), which this
   script loads the first time a reader types, and a section matches when it
   holds every word of the query. No server, no network: it works from the
   files themselves (file://), and index.html?q=words opens with the
   results shown. */
(function () {
  "use strict";
  var index = null, loading = null, MAX = 12;

  function load(done) {
    if (index) { done(); return; }
    if (!loading) {
      loading = [];
      var s = document.createElement("script");
      s.src = "search-index.js";
      s.onload = function () {
        var raw = window.BOOK_SEARCH || { pages: [], sections: [] };
        index = raw.sections.map(function (r) {
          return { page: raw.pages[r[0]], id: r[1], heading: r[2], text: r[3],
                   low: (r[2] + "\n" + r[3]).toLowerCase(), head: r[2].toLowerCase() };
        });
        loading.forEach(function (f) { f(); });
      };
      s.onerror = function () { index = []; loading.forEach(function (f) { f(); }); };
      document.head.appendChild(s);
    }
    loading.push(done);
  }

  function terms(q) {
    return q.toLowerCase().split(/\s+/).filter(function (t) { return t.length > 0; });
  }

  // A term matches at the start of a word: "ist" finds IST1, not "exists".
  function pattern(t) {
    return new RegExp("(^|[^a-z0-9_])" + t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "g");
  }

  function positions(hay, re, most) {
    var at = [], m;
    re.lastIndex = 0;
    while (at.length < most && (m = re.exec(hay))) { at.push(m.index + m[1].length); }
    return at;
  }

  function search(q) {
    var ts = terms(q), res = ts.map(pattern), hits = [];
    if (!ts.length) { return hits; }
    index.forEach(function (s) {
      var score = 0, where = [];
      for (var i = 0; i < ts.length; i++) {
        var at = positions(s.low, res[i], 40);
        if (!at.length) { return; }
        res[i].lastIndex = 0;
        score += Math.min(at.length, 10) + (res[i].test(s.head) ? 30 : 0);
        where.push(at);
      }
      hits.push({ s: s, score: score, where: where });
    });
    hits.sort(function (a, b) { return b.score - a.score; });
    return hits;
  }

  function escape(t) {
    return t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  // The excerpt is cut around the place where the most words of the query
  // come close together.
  function excerpt(h, ts) {
    var s = h.s, best = 0, bestN = -1, head = s.heading.length + 1;
    h.where[0].forEach(function (p) {
      var n = 0;
      h.where.forEach(function (at) {
        if (at.some(function (q) { return Math.abs(q - p) < 120; })) { n++; }
      });
      if (n > bestN) { bestN = n; best = p; }
    });
    var at = Math.max(0, best - head);
    var from = Math.max(0, at - 60), to = Math.min(s.text.length, at + 140);
    var text = (from ? "... " : "") + s.text.slice(from, to).replace(/\s+/g, " ") + (to < s.text.length ? " ..." : "");
    var html = escape(text);
    ts.forEach(function (t) {
      var e = escape(t).replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      html = html.replace(new RegExp("(^|[^A-Za-z0-9_])(" + e + ")", "gi"), "$1\u0001$2\u0002");
    });
    return html.replace(/\u0001/g, "<mark>").replace(/\u0002/g, "</mark>");
  }

  function show(form, q) {
    var list = form.querySelector(".search-results");
    list.innerHTML = "";
    var ts = terms(q);
    if (!ts.length) { return []; }
    var hits = search(q);
    var note = document.createElement("li");
    note.className = "search-note";
    note.textContent = hits.length ? hits.length + " section" + (hits.length === 1 ? "" : "s") +
      (hits.length > MAX ? ", the first " + MAX + " shown" : "") : "no section holds every word";
    list.appendChild(note);
    hits.slice(0, MAX).forEach(function (h) {
      var li = document.createElement("li"), a = document.createElement("a");
      a.href = h.s.page.url + (h.s.id ? "#" + h.s.id : "");
      a.innerHTML = '<span class="where">' + escape(h.s.page.title) +
        (h.s.heading && h.s.heading !== h.s.page.title ? " \u203a " + escape(h.s.heading) : "") +
        '</span><span class="excerpt">' + excerpt(h, ts) + "</span>";
      li.appendChild(a);
      list.appendChild(li);
    });
    return hits;
  }

  function start() {
    var form = document.querySelector("form.search");
    if (!form) { return; }
    var input = form.querySelector("input"), timer = null;
    form.hidden = false;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { load(function () { show(form, input.value); }); }, 120);
    });
    input.addEventListener("focus", function () { load(function () {}); });
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      load(function () {
        var hits = show(form, input.value);
        if (hits.length) { window.location.href = hits[0].s.page.url + (hits[0].s.id ? "#" + hits[0].s.id : ""); }
      });
    });
    var m = /[?&]q=([^&#]*)/.exec(window.location.search);
    if (m) {
      input.value = decodeURIComponent(m[1].replace(/\+/g, " "));
      load(function () { show(form, input.value); });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
