// "?" definition marks ({% definition %}): the tooltip shows on hover and keyboard focus (CSS);
// here a tap toggles it (touch screens do not focus on tap everywhere) and Escape hides it.
(function () {
  "use strict";
  function marks() { return document.querySelectorAll(".define"); }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".define > button.info") : null;
    marks().forEach(function (mark) {
      if (button && mark.contains(button)) {
        mark.classList.remove("is-dismissed");
        mark.classList.toggle("is-open");
      } else {
        mark.classList.remove("is-open");
      }
    });
    if (button) { event.preventDefault(); event.stopPropagation(); }
  }, true);
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") { return; }
    marks().forEach(function (mark) {
      mark.classList.remove("is-open");
      mark.classList.add("is-dismissed");
    });
  });
  document.addEventListener("focusin", function (event) {
    marks().forEach(function (mark) {
      if (mark.contains(event.target)) { mark.classList.remove("is-dismissed"); }
    });
  });
  document.addEventListener("mouseover", function (event) {
    var mark = event.target.closest ? event.target.closest(".define") : null;
    if (mark) { mark.classList.remove("is-dismissed"); }
  });
})();
