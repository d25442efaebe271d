// Searchable multi-selects for the dashboard filters: each <select multiple> in a
// [data-multi] field becomes a search box over checkboxes, with the picked values as chips
// (× removes one) and a one-click "Clear". The <select> stays in the form, hidden, and carries
// the values: without this script the page keeps the plain select.
(function () {
  "use strict";
  var counter = 0;

  function enhance(field) {
    var select = field.querySelector("select[multiple]");
    var label = field.querySelector("label");
    if (!select || !label) { return; }
    var name = label.textContent.trim();
    var id = "multi-" + (++counter);

    var box = document.createElement("div");
    box.className = "multi";
    var chips = document.createElement("ul");
    chips.className = "chips";
    chips.setAttribute("aria-label", name + ": selected");
    var search = document.createElement("input");
    search.type = "search";
    search.id = id;
    search.placeholder = "Search…";
    search.autocomplete = "off";
    // A combobox: it filters the option list it opens (aria-expanded is not allowed on a bare
    // search box, axe-core's aria-allowed-attr).
    search.setAttribute("role", "combobox");
    search.setAttribute("aria-autocomplete", "list");
    search.setAttribute("aria-controls", id + "-options");
    search.setAttribute("aria-expanded", "false");
    var list = document.createElement("div");
    list.className = "multi-options";
    list.id = id + "-options";
    list.setAttribute("role", "group");
    list.setAttribute("aria-label", name + " options");
    list.hidden = true;
    var clear = document.createElement("button");
    clear.type = "button";
    clear.className = "link multi-clear";
    clear.textContent = "Clear";
    clear.setAttribute("aria-label", "Clear " + name);

    Array.prototype.forEach.call(select.options, function (option) {
      var row = document.createElement("label");
      var box_ = document.createElement("input");
      box_.type = "checkbox";
      box_.checked = option.selected;
      box_.addEventListener("change", function () { option.selected = box_.checked; render(); });
      row.appendChild(box_);
      row.appendChild(document.createTextNode(" " + option.textContent));
      row.dataset.text = option.textContent.toLowerCase();
      option._checkbox = box_;
      list.appendChild(row);
    });

    function render() {
      chips.textContent = "";
      var picked = Array.prototype.filter.call(select.options, function (o) { return o.selected; });
      picked.forEach(function (option) {
        var chip = document.createElement("li");
        chip.className = "chip";
        chip.appendChild(document.createTextNode(option.textContent));
        var remove = document.createElement("button");
        remove.type = "button";
        remove.className = "chip-remove";
        remove.textContent = "×";
        remove.setAttribute("aria-label", "Remove " + option.textContent);
        remove.addEventListener("click", function () {
          option.selected = false;
          option._checkbox.checked = false;
          render();
          quiet = true;  // back to the search box, without opening the list over the page
          search.focus();
          quiet = false;
        });
        chip.appendChild(remove);
        chips.appendChild(chip);
      });
      clear.hidden = picked.length === 0;
      search.placeholder = picked.length ? "Add…" : "All — search to pick";
    }

    function open(show) {
      list.hidden = !show;
      search.setAttribute("aria-expanded", show ? "true" : "false");
    }

    var quiet = false;
    search.addEventListener("focus", function () { if (!quiet) { open(true); } });
    search.addEventListener("click", function () { open(true); });
    function narrow() {
      var needle = search.value.trim().toLowerCase();
      Array.prototype.forEach.call(list.children, function (row) {
        row.hidden = needle !== "" && row.dataset.text.indexOf(needle) === -1;
      });
    }
    search.addEventListener("input", function () { narrow(); open(true); });
    search.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { open(false); }
      if (event.key === "Enter") {
        // Enter picks the first match instead of submitting the form half-typed.
        event.preventDefault();
        var first = Array.prototype.find.call(list.children, function (row) { return !row.hidden; });
        if (first) { first.querySelector("input").click(); search.value = ""; narrow(); }
      }
    });
    // A click on an option must not take the focus away from the search box (which would
    // close the list under the pointer).
    list.addEventListener("mousedown", function (event) { event.preventDefault(); });
    box.addEventListener("focusout", function (event) {
      if (!box.contains(event.relatedTarget)) { open(false); }
    });
    document.addEventListener("mousedown", function (event) {
      if (!box.contains(event.target)) { open(false); }
    });
    clear.addEventListener("click", function () {
      Array.prototype.forEach.call(select.options, function (option) {
        option.selected = false;
        option._checkbox.checked = false;
      });
      render();
    });

    select.hidden = true;
    label.htmlFor = id;
    box.appendChild(chips);
    box.appendChild(search);
    box.appendChild(clear);
    box.appendChild(list);
    field.appendChild(box);
    render();
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-multi]"), enhance);
  Array.prototype.forEach.call(document.querySelectorAll("select[data-autosubmit]"), function (s) {
    s.addEventListener("change", function () { s.form.submit(); });
  });
})();
