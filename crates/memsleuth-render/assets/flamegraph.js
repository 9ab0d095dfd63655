// memsleuth flame graph viewer: plain JavaScript, no libraries, no network.
//
// The page embeds the profile as JSON (script#ms-data), already aggregated by the Rust renderer
// into a call tree whose nodes are ordered parents before children:
//   parent[n], loc[n]       node n's parent (-1 for the root) and location (index into labels)
//   leaf_*                  what was allocated in each node itself: node, bytes, blocks, and the
//                           same split by time bin as flat [bin delta, bytes, blocks, ...] lists
//   labels, files, loc_file the locations' labels and files (for colours)
//   heap, rss               [t_ns, bytes, t_ns, bytes, ...], downsampled
// Node values are recomputed from the leaves whenever the time window changes, so a window
// costs one pass over the leaves' bins and one over the nodes.
(function () {
  "use strict";

  var D = JSON.parse(document.getElementById("ms-data").textContent);

  var ROW = 18; // pixels per frame row
  var MIN_FRAC = 0.001; // frames under this share of the view are merged into an "other" cell
  var TOP_SITES = 20;
  var HIGHLIGHT = "#e05cd8";

  function $(id) {
    return document.getElementById(id);
  }

  // ---- units ---------------------------------------------------------------------------

  var UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

  function fmtBytes(n) {
    var v = Math.abs(n);
    var u = 0;
    while (v >= 1024 && u + 1 < UNITS.length) {
      v /= 1024;
      u++;
    }
    var sign = n < 0 ? "-" : "";
    if (u === 0) return sign + v.toFixed(0) + " B";
    return sign + (v >= 100 ? v.toFixed(0) : v.toFixed(1)) + " " + UNITS[u];
  }

  function fmtInt(n) {
    var s = String(Math.round(n));
    return s.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function fmtSeconds(ns) {
    var s = ns / 1e9;
    if (s < 1) return (s * 1000).toFixed(0) + " ms";
    if (s < 120) return s.toFixed(1) + " s";
    var whole = Math.round(s);
    var sec = whole % 60;
    return Math.floor(whole / 60) + "m" + (sec < 10 ? "0" : "") + sec + "s";
  }

  function fmtPct(x) {
    if (!isFinite(x)) return "0%";
    return (x * 100).toFixed(1) + "%";
  }

  function esc(s) {
    return String(s)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  // ---- the call tree -------------------------------------------------------------------

  var N = D.parent.length;
  var parent = Int32Array.from(D.parent);
  var loc = Int32Array.from(D.loc);
  var depth = new Int32Array(N);
  var maxDepth = 0;
  var n, i, k;
  for (n = 1; n < N; n++) {
    depth[n] = depth[parent[n]] + 1;
    if (depth[n] > maxDepth) maxDepth = depth[n];
  }
  // Children of each node, as one flat array sliced by kidStart.
  var kidStart = new Int32Array(N + 1);
  var kids = new Int32Array(Math.max(N - 1, 0));
  for (n = 1; n < N; n++) kidStart[parent[n] + 1]++;
  for (n = 0; n < N; n++) kidStart[n + 1] += kidStart[n];
  var fill = kidStart.slice(0, N);
  for (n = 1; n < N; n++) kids[fill[parent[n]]++] = n;

  var L = D.leaf_node.length;
  var val = new Float64Array(N); // bytes under each node in the current window
  var cnt = new Float64Array(N); // blocks under each node in the current window
  var selfVal = new Float64Array(N); // bytes allocated in the node itself
  var selfCnt = new Float64Array(N);
  var win = null; // null for the whole run, else [first bin, last bin], inclusive

  function compute() {
    val.fill(0);
    cnt.fill(0);
    selfVal.fill(0);
    selfCnt.fill(0);
    for (var l = 0; l < L; l++) {
      var b = 0;
      var c = 0;
      if (win === null) {
        b = D.leaf_bytes[l];
        c = D.leaf_count[l];
      } else {
        var bins = D.leaf_bins[l];
        var bin = 0;
        for (var j = 0; j < bins.length; j += 3) {
          bin += bins[j];
          if (bin > win[1]) break;
          if (bin >= win[0]) {
            b += bins[j + 1];
            c += bins[j + 2];
          }
        }
      }
      var node = D.leaf_node[l];
      selfVal[node] += b;
      selfCnt[node] += c;
    }
    val.set(selfVal);
    cnt.set(selfCnt);
    // Parents come before children, so one backwards pass sums every subtree.
    for (var m = N - 1; m > 0; m--) {
      val[parent[m]] += val[m];
      cnt[parent[m]] += cnt[m];
    }
  }

  // ---- colours: one per file, from a stable hash of its name ----------------------------

  function hash(s) {
    var h = 0x811c9dc5;
    for (var j = 0; j < s.length; j++) {
      h ^= s.charCodeAt(j);
      h = Math.imul(h, 0x01000193);
    }
    return h >>> 0;
  }

  var fileColour = D.files.map(function (f) {
    var h = hash(f);
    var hue = h % 360;
    var sat = 45 + ((h >>> 9) % 25);
    var light = 68 + ((h >>> 17) % 10);
    return "hsl(" + hue + "," + sat + "%," + light + "%)";
  });

  function label(node) {
    return node === 0 ? "all" : D.labels[loc[node]];
  }

  // ---- search ------------------------------------------------------------------------------

  var locMatch = new Uint8Array(D.labels.length);
  var searching = false;
  var searchError = "";

  function setSearch(q) {
    q = String(q || "").trim();
    locMatch.fill(0);
    searchError = "";
    searching = q !== "";
    if (searching) {
      var test;
      if (q.length > 2 && q.charAt(0) === "/" && q.charAt(q.length - 1) === "/") {
        try {
          var re = new RegExp(q.slice(1, -1), "i");
          test = function (s) {
            return re.test(s);
          };
        } catch (e) {
          searchError = "bad regular expression";
          test = function () {
            return false;
          };
        }
      } else {
        var needle = q.toLowerCase();
        test = function (s) {
          return s.toLowerCase().indexOf(needle) >= 0;
        };
      }
      for (i = 0; i < D.labels.length; i++) locMatch[i] = test(D.labels[i]) ? 1 : 0;
    }
    updateMatch();
    drawFlame();
  }

  function isMatch(node) {
    return searching && node > 0 && locMatch[loc[node]] === 1;
  }

  // The matched share counts each byte once: only matches with no matching ancestor add up.
  var matched = 0;

  function updateMatch() {
    var out = $("match-text");
    matched = 0;
    if (!searching) {
      out.textContent = "";
      return;
    }
    if (searchError) {
      out.textContent = searchError;
      return;
    }
    var under = new Uint8Array(N);
    for (var m = 1; m < N; m++) {
      var hit = locMatch[loc[m]];
      if (hit && !under[parent[m]]) matched += val[m];
      under[m] = under[parent[m]] | hit;
    }
    out.textContent = "matched " + fmtPct(val[0] > 0 ? matched / val[0] : 0) + " of " +
      fmtBytes(val[0]);
  }

  // ---- flame graph layout and drawing -----------------------------------------------------

  var canvas = $("flame");
  var ctx = canvas.getContext("2d");
  var zoom = 0;
  var rows = []; // rows[depth] = cells sorted by x: {x0, x1, node, anc} or {.., node: -1, par, n, v, c}

  function layout(width) {
    rows = [];
    for (var d = 0; d <= maxDepth; d++) rows.push([]);
    for (var a = zoom; a >= 0; a = parent[a]) {
      rows[depth[a]].push({ x0: 0, x1: width, node: a, anc: a !== zoom });
    }
    var total = val[zoom];
    if (!(total > 0)) return;
    var scale = width / total;
    var minV = MIN_FRAC * total;
    var stack = [zoom, 0];
    while (stack.length) {
      var x = stack.pop();
      var p = stack.pop();
      var a0 = kidStart[p];
      var a1 = kidStart[p + 1];
      if (a0 === a1) continue;
      var ch = [];
      for (k = a0; k < a1; k++) if (val[kids[k]] > 0) ch.push(kids[k]);
      ch.sort(function (u, v) {
        return val[v] - val[u];
      });
      var row = rows[depth[p] + 1];
      var otherN = 0;
      var otherV = 0;
      var otherC = 0;
      for (k = 0; k < ch.length; k++) {
        var c = ch[k];
        if (val[c] >= minV) {
          row.push({ x0: x * scale, x1: (x + val[c]) * scale, node: c, anc: false });
          stack.push(c, x);
          x += val[c];
        } else {
          otherN++;
          otherV += val[c];
          otherC += cnt[c];
        }
      }
      if (otherN > 0) {
        row.push({ x0: x * scale, x1: (x + otherV) * scale, node: -1, par: p, n: otherN,
          v: otherV, c: otherC });
      }
    }
    for (d = 0; d < rows.length; d++) {
      rows[d].sort(function (u, v) {
        return u.x0 - v.x0;
      });
    }
    while (rows.length > 1 && rows[rows.length - 1].length === 0) rows.pop();
  }

  var cells = 0; // cells drawn by the last drawFlame, for tests and curiosity

  function drawFlame() {
    var wrap = $("flame-wrap");
    var width = Math.max(300, wrap.clientWidth || 1000);
    layout(width);
    var height = Math.max(1, rows.length) * ROW;
    var dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "12px ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace";
    ctx.textBaseline = "middle";
    var charW = ctx.measureText("mmmmmmmmmm").width / 10 || 7.2;
    cells = 0;
    for (var d = 0; d < rows.length; d++) {
      var y = d * ROW;
      var row = rows[d];
      for (var j = 0; j < row.length; j++) {
        var cell = row[j];
        var w = cell.x1 - cell.x0;
        var node = cell.node;
        var text;
        if (node < 0) {
          ctx.fillStyle = "#d4d7dd";
          text = "+" + cell.n + " smaller";
        } else if (node === 0) {
          ctx.fillStyle = isMatch(node) ? HIGHLIGHT : "#c3c8d1";
          text = "all (" + fmtBytes(val[0]) + (win ? ", in window" : "") + ")";
        } else {
          ctx.fillStyle = isMatch(node) ? HIGHLIGHT : fileColour[D.loc_file[loc[node]]];
          text = D.labels[loc[node]];
        }
        // Ancestors of the zoomed frame are faded; so is everything a search does not match.
        ctx.globalAlpha = cell.anc || (searching && !isMatch(node)) ? 0.45 : 1;
        ctx.fillRect(cell.x0, y, Math.max(w - (w > 3 ? 1 : 0), 0.5), ROW - 1);
        cells++;
        if (w > 24) {
          var fit = Math.floor((w - 6) / charW);
          if (text.length > fit) text = fit > 1 ? text.slice(0, fit - 1) + "\u2026" : "";
          if (text) {
            ctx.fillStyle = "#111827";
            ctx.fillText(text, cell.x0 + 3, y + ROW / 2);
          }
        }
      }
    }
    ctx.globalAlpha = 1;
    $("reset-zoom").disabled = zoom === 0;
    $("zoom-text").textContent = zoom === 0 ? "" : "zoomed into " + label(zoom);
    if (!(val[0] > 0)) {
      $("flame-note").textContent = win ? "Nothing in this profile was allocated in the selected window." : "This profile is empty.";
    } else {
      $("flame-note").textContent = "";
    }
  }

  function hit(x, y) {
    var d = Math.floor(y / ROW);
    if (d < 0 || d >= rows.length) return null;
    var row = rows[d];
    var lo = 0;
    var hi = row.length - 1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1;
      if (row[mid].x1 <= x) lo = mid + 1;
      else if (row[mid].x0 > x) hi = mid - 1;
      else return row[mid];
    }
    return null;
  }

  function zoomTo(node) {
    if (node >= 0 && node < N) zoom = node;
    drawFlame();
  }

  // ---- tooltip ----------------------------------------------------------------------------

  var tip = $("tooltip");

  function tipHtml(cell) {
    var total = val[0];
    if (cell.node < 0) {
      return "<b>" + cell.n + " smaller frames</b> under " + esc(label(cell.par)) +
        "<br>" + fmtBytes(cell.v) + " \u00b7 " + fmtInt(cell.c) + " blocks \u00b7 " +
        fmtPct(cell.v / total) + " of total" +
        "<br><span class=\"muted\">each under " + fmtPct(MIN_FRAC) +
        " of the view; click to zoom into the caller</span>";
    }
    var node = cell.node;
    var h = "<b>" + esc(label(node)) + "</b><br>" + fmtBytes(val[node]) + " (" +
      fmtInt(val[node]) + " bytes) \u00b7 " + fmtInt(cnt[node]) + " blocks<br>" +
      fmtPct(total > 0 ? val[node] / total : 0) + " of total";
    if (zoom !== 0 && !cell.anc && node !== zoom && val[zoom] > 0) {
      h += ", " + fmtPct(val[node] / val[zoom]) + " of the zoomed frame";
    }
    if (selfVal[node] > 0) {
      h += "<br>allocated right here: " + fmtBytes(selfVal[node]) + " in " +
        fmtInt(selfCnt[node]) + " blocks";
    }
    if (win) h += "<br><span class=\"muted\">in the selected window</span>";
    return h;
  }

  function showTip(cell, cx, cy) {
    tip.innerHTML = tipHtml(cell);
    tip.hidden = false;
    var vw = window.innerWidth || 1200;
    var vh = window.innerHeight || 800;
    var r = tip.getBoundingClientRect();
    var x = cx + 14;
    var y = cy + 14;
    if (x + r.width > vw - 4) x = Math.max(4, cx - r.width - 14);
    if (y + r.height > vh - 4) y = Math.max(4, cy - r.height - 14);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  function canvasPoint(e) {
    var r = canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  canvas.addEventListener("mousemove", function (e) {
    var p = canvasPoint(e);
    var cell = hit(p[0], p[1]);
    if (!cell) {
      tip.hidden = true;
      canvas.style.cursor = "";
      return;
    }
    canvas.style.cursor = "pointer";
    showTip(cell, e.clientX, e.clientY);
  });
  canvas.addEventListener("mouseleave", function () {
    tip.hidden = true;
  });
  canvas.addEventListener("click", function (e) {
    var p = canvasPoint(e);
    var cell = hit(p[0], p[1]);
    if (!cell) return;
    zoomTo(cell.node >= 0 ? cell.node : cell.par);
    tip.hidden = true;
  });
  $("reset-zoom").addEventListener("click", function () {
    zoomTo(0);
  });

  var searchTimer = null;
  $("search").addEventListener("input", function () {
    if (searchTimer !== null) clearTimeout(searchTimer);
    searchTimer = setTimeout(function () {
      searchTimer = null;
      setSearch($("search").value);
    }, 120);
  });
  $("search").addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      $("search").value = "";
      setSearch("");
    }
  });

  // ---- top allocation sites -----------------------------------------------------------------

  function renderSites() {
    var nl = D.labels.length;
    var sb = new Float64Array(nl);
    var sc = new Float64Array(nl);
    for (var m = 1; m < N; m++) {
      if (selfVal[m] > 0 || selfCnt[m] > 0) {
        sb[loc[m]] += selfVal[m];
        sc[loc[m]] += selfCnt[m];
      }
    }
    var order = [];
    for (var s = 0; s < nl; s++) if (sb[s] > 0 || sc[s] > 0) order.push(s);
    order.sort(function (u, v) {
      return sb[v] - sb[u] || sc[v] - sc[u];
    });
    order = order.slice(0, TOP_SITES);
    var total = val[0];
    var html = "";
    for (var r = 0; r < order.length; r++) {
      var site = order[r];
      html += "<tr data-site=\"" + site + "\"><td class=\"num\">" + (r + 1) +
        "</td><td><code>" + esc(D.labels[site]) + "</code></td><td class=\"num\">" +
        fmtBytes(sb[site]) + "</td><td class=\"num\">" + fmtInt(sc[site]) +
        "</td><td class=\"num\">" + fmtPct(total > 0 ? sb[site] / total : 0) + "</td></tr>";
    }
    if (!order.length) {
      html = "<tr><td colspan=\"5\" class=\"muted\">nothing allocated" +
        (win ? " in the selected window" : "") + "</td></tr>";
    }
    $("sites-body").innerHTML = html;
    $("sites-scope").textContent = win ? "in the selected window" : "whole run";
  }

  $("sites-body").addEventListener("click", function (e) {
    var tr = e.target;
    while (tr && tr.tagName !== "TR") tr = tr.parentNode;
    if (!tr || !tr.getAttribute("data-site")) return;
    var site = Number(tr.getAttribute("data-site"));
    $("search").value = D.labels[site];
    setSearch(D.labels[site]);
  });

  // ---- timeline ---------------------------------------------------------------------------

  var TL_H = 210;
  var PAD = { l: 70, r: 14, t: 12, b: 26 };
  var canSelect = D.bins > 0 && D.bin_ns > 0 && L > 0;
  var endNs = Math.max(D.end_ns, 1);
  var tlWidth = 1000;

  // Bytes of this profile by the time bin they were allocated in, for the bars.
  var binTotals = new Float64Array(Math.max(D.bins, 0));
  (function () {
    for (var l = 0; l < L; l++) {
      var bins = D.leaf_bins[l];
      var bin = 0;
      for (var j = 0; j < bins.length; j += 3) {
        bin += bins[j];
        if (bin < binTotals.length) binTotals[bin] += bins[j + 1];
      }
    }
  })();

  function niceStep(raw) {
    if (!(raw > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
  }

  function decimals(step) {
    var d = 0;
    while (d < 6 && Math.abs(Math.round(step * Math.pow(10, d)) - step * Math.pow(10, d)) > 1e-9) d++;
    return d;
  }

  function seriesMax(s) {
    var m = 0;
    for (var j = 1; j < s.length; j += 2) if (s[j] > m) m = s[j];
    return m;
  }

  function tlScales(W) {
    var yMax = Math.max(seriesMax(D.heap), seriesMax(D.rss), 1);
    var unit = 1;
    var u = 0;
    while (yMax / unit >= 1024 && u + 1 < UNITS.length) {
      unit *= 1024;
      u++;
    }
    var step = niceStep(yMax / unit / 4);
    var top = Math.ceil((yMax / unit) / step) * step;
    var plotW = Math.max(W - PAD.l - PAD.r, 10);
    var plotH = TL_H - PAD.t - PAD.b;
    return {
      unit: unit, unitName: UNITS[u], step: step, top: top, plotW: plotW, plotH: plotH,
      x: function (t) {
        return PAD.l + (t / endNs) * plotW;
      },
      y: function (v) {
        return PAD.t + plotH - (v / unit / top) * plotH;
      }
    };
  }

  function polyline(s, sc, colour) {
    if (s.length < 2) return "";
    var pts = [];
    for (var j = 0; j + 1 < s.length; j += 2) {
      pts.push(sc.x(s[j]).toFixed(1) + "," + sc.y(s[j + 1]).toFixed(1));
    }
    return "<polyline fill=\"none\" stroke=\"" + colour + "\" stroke-width=\"1.6\" " +
      "stroke-linejoin=\"round\" points=\"" + pts.join(" ") + "\"/>";
  }

  function selectionRect(sc, b0, b1) {
    var x0 = sc.x(b0 * D.bin_ns);
    var x1 = sc.x(Math.min((b1 + 1) * D.bin_ns, endNs));
    return { x: Math.min(x0, x1), w: Math.max(Math.abs(x1 - x0), 1.5) };
  }

  function drawTimeline() {
    var box = $("timeline");
    if (!(D.end_ns > 0)) {
      box.innerHTML = "";
      $("legend").innerHTML = "<span class=\"muted\">no memory readings over time</span>";
      return;
    }
    var W = Math.max(320, box.clientWidth || 1000);
    tlWidth = W;
    var sc = tlScales(W);
    var h = [];
    h.push("<svg id=\"tl-svg\" width=\"" + W + "\" height=\"" + TL_H + "\" viewBox=\"0 0 " + W +
      " " + TL_H + "\" role=\"img\" aria-label=\"tracked heap and RSS over time\">");
    // Horizontal grid and byte labels.
    for (var v = 0; v <= sc.top + 1e-9; v += sc.step) {
      var y = sc.y(v * sc.unit).toFixed(1);
      h.push("<line class=\"grid\" x1=\"" + PAD.l + "\" x2=\"" + (W - PAD.r) + "\" y1=\"" + y +
        "\" y2=\"" + y + "\"/>");
      h.push("<text class=\"axis\" x=\"" + (PAD.l - 6) + "\" y=\"" + y +
        "\" text-anchor=\"end\" dominant-baseline=\"middle\">" +
        (v === 0 ? "0" : v.toFixed(decimals(sc.step)) + " " + sc.unitName) + "</text>");
    }
    // Time ticks.
    var secs = endNs / 1e9;
    var tstep = niceStep(secs / 8);
    for (var t = 0; t <= secs + 1e-9; t += tstep) {
      var x = sc.x(t * 1e9).toFixed(1);
      h.push("<line class=\"tick\" x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + (TL_H - PAD.b) +
        "\" y2=\"" + (TL_H - PAD.b + 4) + "\"/>");
      var lbl = tstep >= 60 && t >= 60 ? fmtSeconds(t * 1e9) : t.toFixed(decimals(tstep)) + " s";
      h.push("<text class=\"axis\" x=\"" + x + "\" y=\"" + (TL_H - 6) +
        "\" text-anchor=\"middle\">" + lbl + "</text>");
    }
    // When this profile's bytes were allocated: bars on their own scale, under the lines.
    var barMax = 0;
    for (var b = 0; b < binTotals.length; b++) if (binTotals[b] > barMax) barMax = binTotals[b];
    if (barMax > 0 && D.bin_ns > 0) {
      var path = [];
      var base = PAD.t + sc.plotH;
      for (b = 0; b < binTotals.length; b++) {
        if (!(binTotals[b] > 0)) continue;
        var bx0 = sc.x(b * D.bin_ns);
        var bx1 = sc.x(Math.min((b + 1) * D.bin_ns, endNs));
        var by = base - (binTotals[b] / barMax) * sc.plotH * 0.9;
        path.push("M" + bx0.toFixed(1) + " " + base + "V" + by.toFixed(1) + "H" +
          bx1.toFixed(1) + "V" + base + "Z");
      }
      h.push("<path class=\"bars\" d=\"" + path.join("") + "\"/>");
    }
    h.push("<line class=\"axisline\" x1=\"" + PAD.l + "\" x2=\"" + (W - PAD.r) + "\" y1=\"" +
      (TL_H - PAD.b) + "\" y2=\"" + (TL_H - PAD.b) + "\"/>");
    h.push(polyline(D.rss, sc, "#d97706"));
    h.push(polyline(D.heap, sc, "#2563eb"));
    var sel = win ? selectionRect(sc, win[0], win[1]) : { x: 0, w: 0 };
    h.push("<rect id=\"tl-sel\" class=\"sel\" x=\"" + sel.x.toFixed(1) + "\" y=\"" + PAD.t +
      "\" width=\"" + sel.w.toFixed(1) + "\" height=\"" + sc.plotH + "\"" +
      (win ? "" : " visibility=\"hidden\"") + "/>");
    h.push("</svg>");
    box.innerHTML = h.join("");
    box.className = canSelect ? "selectable" : "";

    var legend = [];
    if (D.heap.length) legend.push("<span><i style=\"background:#2563eb\"></i>tracked heap</span>");
    if (D.rss.length) legend.push("<span><i style=\"background:#d97706\"></i>RSS</span>");
    if (barMax > 0) {
      legend.push("<span><i class=\"bar\"></i>bytes of this profile by allocation time " +
        "(own scale)</span>");
    }
    if (!D.heap.length && !D.rss.length) legend.push("<span class=\"muted\">no memory readings over time</span>");
    $("legend").innerHTML = legend.join("");
  }

  function binAt(clientX) {
    var svg = $("tl-svg");
    var r = svg.getBoundingClientRect();
    var sc = tlScales(tlWidth);
    var x = (clientX - r.left) * (r.width > 0 ? tlWidth / r.width : 1);
    var t = ((x - PAD.l) / sc.plotW) * endNs;
    var b = Math.floor(t / D.bin_ns);
    return Math.max(0, Math.min(D.bins - 1, b));
  }

  var drag = null;

  $("timeline").addEventListener("mousedown", function (e) {
    if (!canSelect || e.button !== 0) return;
    var b = binAt(e.clientX);
    drag = { b0: b, b1: b };
    e.preventDefault();
    showDrag();
  });
  window.addEventListener("mousemove", function (e) {
    if (!drag) return;
    drag.b1 = binAt(e.clientX);
    showDrag();
  });
  window.addEventListener("mouseup", function () {
    if (!drag) return;
    var d = drag;
    drag = null;
    setWindow(Math.min(d.b0, d.b1), Math.max(d.b0, d.b1));
  });

  function showDrag() {
    var rect = $("tl-sel");
    if (!rect) return;
    var s = selectionRect(tlScales(tlWidth), Math.min(drag.b0, drag.b1), Math.max(drag.b0, drag.b1));
    rect.setAttribute("x", s.x.toFixed(1));
    rect.setAttribute("width", s.w.toFixed(1));
    rect.setAttribute("visibility", "visible");
  }

  // A window edge in seconds, as precise as the bins are (0.25 s bins: "10.25 s").
  function fmtEdge(ns) {
    var s = ns / 1e9;
    if (s >= 120) return fmtSeconds(ns);
    var d = Math.min(3, Math.max(1, decimals(D.bin_ns / 1e9)));
    return s.toFixed(d) + " s";
  }

  function windowText() {
    if (!win) {
      return "whole run: " + fmtBytes(val[0]) + " in " + fmtInt(cnt[0]) + " blocks";
    }
    var t0 = win[0] * D.bin_ns;
    var t1 = Math.min((win[1] + 1) * D.bin_ns, endNs);
    return "window " + fmtEdge(t0) + " \u2013 " + fmtEdge(t1) + ": " + fmtBytes(val[0]) +
      " in " + fmtInt(cnt[0]) + " blocks allocated in it (" +
      fmtPct(D.total_bytes > 0 ? val[0] / D.total_bytes : 0) + " of " +
      fmtBytes(D.total_bytes) + ")";
  }

  function refresh() {
    compute();
    if (zoom !== 0 && !(val[zoom] > 0)) zoom = 0;
    updateMatch();
    drawTimeline();
    drawFlame();
    renderSites();
    $("window-text").textContent = windowText();
    $("whole-run").disabled = win === null;
  }

  function setWindow(b0, b1) {
    if (!canSelect) return;
    b0 = Math.max(0, Math.min(D.bins - 1, Math.floor(b0)));
    b1 = Math.max(b0, Math.min(D.bins - 1, Math.floor(b1)));
    win = [b0, b1];
    refresh();
  }

  function clearWindow() {
    win = null;
    refresh();
  }

  $("whole-run").addEventListener("click", clearWindow);
  if (!canSelect) {
    $("tl-hint").textContent = D.bins > 0 && D.bin_ns > 0
      ? "Nothing to select: the profile is empty."
      : "This profile has no allocation times, so the flame graph always shows the whole run.";
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    if (resizeTimer !== null) clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      resizeTimer = null;
      drawTimeline();
      drawFlame();
    }, 150);
  });

  refresh();

  // A handle for tests and for poking around from the browser console.
  window.memsleuthFlame = {
    setWindow: setWindow,
    clearWindow: clearWindow,
    search: setSearch,
    zoomTo: zoomTo,
    state: function () {
      return {
        nodes: N,
        leaves: L,
        maxDepth: maxDepth,
        total: val[0],
        blocks: cnt[0],
        matched: matched,
        zoom: zoom,
        window: win ? win.slice() : null,
        cells: cells,
        rows: rows.length
      };
    },
    label: label,
    valueOf: function (node) {
      return val[node];
    }
  };
})();
