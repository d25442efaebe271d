/* The pipeline review page: one section at a time, moved with the keyboard, light or dark.
 *
 * ← → (and Page Up / Page Down) move between sections, Home / End jump to the first / last,
 * "t" switches the theme. The theme is remembered in localStorage; until one is chosen the
 * system's preference (prefers-color-scheme) applies. The section shown is kept in the URL's
 * hash, so reloading or sharing the link opens the same section. Vanilla JS, no build step.
 */
(function () {
  "use strict";

  var THEME_KEY = "revops.meeting.theme";
  var root = document.documentElement;

  function storedTheme() {
    try {
      var value = window.localStorage.getItem(THEME_KEY);
      return value === "light" || value === "dark" ? value : null;
    } catch (error) {
      return null; // storage disabled: follow the system
    }
  }

  // Applied before the page renders, so a dark room never sees a white flash.
  var initial = storedTheme();
  if (initial) root.setAttribute("data-theme", initial);

  function currentTheme() {
    var chosen = root.getAttribute("data-theme");
    if (chosen) return chosen;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches
      ? "dark"
      : "light";
  }

  function toggleTheme() {
    var next = currentTheme() === "dark" ? "light" : "dark";
    root.setAttribute("data-theme", next);
    try {
      window.localStorage.setItem(THEME_KEY, next);
    } catch (error) {
      /* not remembered; still switched */
    }
    updateThemeButtons();
  }

  function updateThemeButtons() {
    var dark = currentTheme() === "dark";
    document.querySelectorAll("[data-theme-toggle]").forEach(function (button) {
      button.setAttribute("aria-pressed", dark ? "true" : "false");
    });
  }

  // A big number wider than its tile (a large amount on a small screen) is shrunk until it
  // fits, down to 40% of its size, rather than cut or spilled over the next tile.
  function fitNumbers(slide) {
    slide.querySelectorAll(".kpi-value").forEach(function (number) {
      number.style.fontSize = "";
      var full = parseFloat(window.getComputedStyle(number).fontSize);
      var size = full;
      while (number.scrollWidth > number.clientWidth + 1 && size > full * 0.4) {
        size *= 0.93;
        number.style.fontSize = size + "px";
      }
    });
  }

  function isTyping(target) {
    if (!target) return false;
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }

  function init() {
    var page = document.querySelector(".meeting-page");
    if (!page) return;
    var slides = Array.prototype.slice.call(page.querySelectorAll("section.slide"));
    if (!slides.length) return;
    var position = page.querySelector("[data-deck-position]");
    var current = -1;
    page.classList.add("js-deck");

    function indexOf(id) {
      for (var i = 0; i < slides.length; i += 1) {
        if (slides[i].id === id) return i;
      }
      return -1;
    }

    function show(index, remember) {
      index = Math.max(0, Math.min(slides.length - 1, index));
      if (index === current) return;
      slides.forEach(function (slide, i) {
        var on = i === index;
        slide.classList.toggle("is-current", on);
        slide.setAttribute("aria-hidden", on ? "false" : "true");
      });
      current = index;
      fitNumbers(slides[index]);
      if (position) position.textContent = index + 1 + " / " + slides.length;
      var title = slides[index].getAttribute("data-title");
      if (title) page.setAttribute("data-current-title", title);
      if (remember && window.history && window.history.replaceState) {
        window.history.replaceState(null, "", "#" + slides[index].id);
      }
    }

    function fromHash() {
      var found = indexOf(window.location.hash.replace(/^#/, ""));
      return found;
    }

    var start = fromHash();
    if (start < 0) start = indexOf(page.getAttribute("data-start") || "");
    show(start < 0 ? 0 : start, false);
    updateThemeButtons();

    document.addEventListener("keydown", function (event) {
      if (event.altKey || event.ctrlKey || event.metaKey || isTyping(event.target)) return;
      switch (event.key) {
        case "ArrowRight":
        case "PageDown":
          show(current + 1, true);
          break;
        case "ArrowLeft":
        case "PageUp":
          show(current - 1, true);
          break;
        case "Home":
          show(0, true);
          break;
        case "End":
          show(slides.length - 1, true);
          break;
        case "t":
        case "T":
          toggleTheme();
          break;
        default:
          return;
      }
      event.preventDefault();
    });

    page.addEventListener("click", function (event) {
      var control = event.target.closest("[data-deck], [data-theme-toggle], a[href^='#']");
      if (!control) return;
      if (control.hasAttribute("data-theme-toggle")) {
        toggleTheme();
      } else if (control.getAttribute("data-deck") === "next") {
        show(current + 1, true);
      } else if (control.getAttribute("data-deck") === "prev") {
        show(current - 1, true);
      } else {
        var target = indexOf(control.getAttribute("href").slice(1));
        if (target < 0) return;
        event.preventDefault();
        show(target, true);
      }
    });

    // Notices ("Action added"…) float over the slide: gone after a while, or on a click.
    var notices = page.querySelector(".deck-messages");
    if (notices) {
      notices.addEventListener("click", function () {
        notices.hidden = true;
      });
      window.setTimeout(function () {
        notices.hidden = true;
      }, 8000);
    }

    window.addEventListener("resize", function () {
      if (current >= 0) fitNumbers(slides[current]);
    });

    window.addEventListener("hashchange", function () {
      var target = fromHash();
      if (target >= 0) show(target, false);
    });

    if (window.matchMedia) {
      var query = window.matchMedia("(prefers-color-scheme: dark)");
      if (query.addEventListener) query.addEventListener("change", updateThemeButtons);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
