"""The site's one script, written by lineage (no third-party code): sortable tables, the runs
filter, and comparing the runs a reader ticks.

It reads data only from ``data-`` attributes the pages wrote escaped, builds the comparison
with DOM calls and ``textContent`` (never ``innerHTML`` from data), and attaches every handler
with ``addEventListener``: no inline handler exists in any page.
"""

from __future__ import annotations

from typing import Final

__all__ = ["SCRIPT"]

SCRIPT: Final = r"""
"use strict";
(function () {
  function value(cell) {
    var raw = cell.getAttribute("data-value");
    var text = raw === null ? cell.textContent.trim() : raw;
    var number = parseFloat(text.replace(/,/g, ""));
    return isNaN(number) || !/^-?[\d.,]+(e[-+]?\d+)?$/i.test(text.replace(/,/g, ""))
      ? text.toLowerCase() : number;
  }
  document.querySelectorAll("th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () {
      var table = th.closest("table"), body = table.tBodies[0];
      var index = Array.prototype.indexOf.call(th.parentNode.children, th);
      var up = th.getAttribute("data-order") !== "asc";
      th.setAttribute("data-order", up ? "asc" : "desc");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = value(a.cells[index]), y = value(b.cells[index]);
        if (x === y) { return 0; }
        return (x < y ? -1 : 1) * (up ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    input.addEventListener("input", function () {
      var needle = input.value.toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) < 0;
      });
    });
  });
  function cell(row, text, tag) {
    var element = document.createElement(tag || "td");
    element.textContent = text;
    row.appendChild(element);
  }
  function show(value) {
    if (value === undefined || value === null) { return "—"; }
    return typeof value === "number" ? String(Number(value.toPrecision(4)))
      : JSON.stringify(value);
  }
  var button = document.getElementById("compare-button");
  if (button) {
    button.addEventListener("click", function () {
      var chosen = Array.prototype.map.call(
        document.querySelectorAll("input[data-run]:checked"),
        function (box) { return JSON.parse(box.getAttribute("data-run")); });
      var target = document.getElementById("compare");
      target.textContent = "";
      if (chosen.length < 2) { target.textContent = "Tick at least two runs."; return; }
      var table = document.createElement("table"), head = table.insertRow();
      cell(head, "", "th");
      chosen.forEach(function (run) {
        cell(head, run.op + " " + run.digest.slice(0, 8), "th");
      });
      function rows(kind, keys, delta) {
        keys.forEach(function (key) {
          var row = table.insertRow(), first = chosen[0][kind][key];
          cell(row, kind + " " + key);
          chosen.forEach(function (run, i) {
            var v = run[kind][key], text = show(v);
            if (delta && i > 0 && typeof v === "number" && typeof first === "number") {
              text += " (" + (v - first >= 0 ? "+" : "") + show(v - first) + ")";
            }
            cell(row, text);
          });
        });
      }
      function keys(kind) {
        var all = {};
        chosen.forEach(function (run) {
          Object.keys(run[kind]).forEach(function (k) { all[k] = 1; });
        });
        return Object.keys(all).sort();
      }
      var params = keys("params");
      var differ = params.filter(function (k) {
        return chosen.some(function (r) {
          return JSON.stringify(r.params[k]) !== JSON.stringify(chosen[0].params[k]);
        });
      });
      rows("params", differ, false);
      rows("params", params.filter(function (k) { return differ.indexOf(k) < 0; }), false);
      rows("metrics", keys("metrics"), true);
      var sets = table.insertRow();
      cell(sets, "measured on");
      chosen.forEach(function (run) { cell(sets, run.test_sets.join(", ") || "—"); });
      target.appendChild(table);
    });
  }
})();
"""
