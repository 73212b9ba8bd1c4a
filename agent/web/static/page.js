/* What the board and the report pages share: building elements and showing figures. */
(function () {
  "use strict";
  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function missing(v) { return v === null || v === undefined; }
  /* a ratio as a percentage; '-' for a figure the records leave undefined (null) */
  function pct(v) { return missing(v) ? "-" : (v * 100).toFixed(1) + "%"; }
  function num(v, digits, grouping) {
    return missing(v) ? "-" : Number(v).toLocaleString(undefined, { maximumFractionDigits: digits, useGrouping: !!grouping });
  }
  /* the page's figures: inline in a report file, else fetched from data-source */
  function embedded() {
    var block = document.getElementById("page-data");
    return block ? JSON.parse(block.textContent) : null;
  }
  window.EdgeAgentPage = { el: el, pct: pct, num: num, embedded: embedded };
})();
