// Progressive enhancement for participant pages: number keys choose an option, the choice is
// kept across a reload, and time on page is measured; on questionnaire pages free-text
// fields count the characters left. The forms work without any of this.
(function () {
  "use strict";
  // The limit is enforced by maxlength and by the server; this only shows how much is left.
  Array.prototype.slice.call(document.querySelectorAll(".char-limit[data-limit]")).forEach(function (note) {
    var field = document.getElementById(note.id.replace(/^limit-/, "input-"));
    var limit = parseInt(note.getAttribute("data-limit"), 10);
    if (!field || !limit) { return; }
    var base = note.textContent;
    function update() {
      var used = field.value.replace(/\r\n/g, "\n").length;
      note.textContent = base + " " + used + " / " + limit;
    }
    field.addEventListener("input", update);
    update();
  });
  var summary = document.getElementById("error-summary");
  if (summary && !document.querySelector("form.rating-form")) { summary.focus(); }
})();

(function () {
  "use strict";
  var form = document.querySelector("form.rating-form");
  if (!form) { return; }
  var started = performance.now();
  var storageKey = "refusallab:" + form.getAttribute("data-autosave");
  var fieldsets = Array.prototype.slice.call(form.querySelectorAll("fieldset.likert"));

  function save() {
    var data = {};
    fieldsets.forEach(function (fs) {
      var checked = fs.querySelector("input[type=radio]:checked");
      if (checked) { data[checked.name] = checked.value; }
    });
    try { sessionStorage.setItem(storageKey, JSON.stringify(data)); } catch (e) { /* storage off */ }
  }

  function restore() {
    var data;
    try { data = JSON.parse(sessionStorage.getItem(storageKey) || "{}"); } catch (e) { data = {}; }
    Object.keys(data).forEach(function (name) {
      var input = form.querySelector("input[type=radio][name='" + name + "'][value='" + data[name] + "']");
      if (input && !form.querySelector("input[type=radio][name='" + name + "']:checked")) { input.checked = true; }
    });
  }

  function currentFieldset() {
    var active = document.activeElement;
    var fs = active && active.closest ? active.closest("fieldset.likert") : null;
    if (fs) { return fs; }
    // Otherwise the first question still unanswered, so keys walk down the page.
    return fieldsets.find(function (f) { return !f.querySelector("input:checked"); }) || fieldsets[fieldsets.length - 1];
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || !/^[1-9]$/.test(event.key)) { return; }
    var fs = currentFieldset();
    if (!fs) { return; }
    var input = fs.querySelector("input[type=radio][value='" + event.key + "']");
    if (!input) { return; }
    event.preventDefault();
    input.checked = true;
    input.focus();
    save();
    var next = fieldsets[fieldsets.indexOf(fs) + 1];
    if (next) {
      var target = next.querySelector("input:checked") || next.querySelector("input[type=radio]");
      if (target) { target.focus(); }
    }
  });

  form.addEventListener("change", save);
  form.addEventListener("submit", function () {
    var ms = form.querySelector("input[name=client_ms]");
    if (ms) { ms.value = String(Math.round(performance.now() - started)); }
    try { sessionStorage.removeItem(storageKey); } catch (e) { /* storage off */ }
    var button = form.querySelector("button[type=submit]");
    // Block a second click while the first submit is in flight; the server dedupes anyway.
    if (button) { setTimeout(function () { button.disabled = true; }, 0); }
  });

  restore();
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
