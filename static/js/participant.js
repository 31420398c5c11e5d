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
  // One group per statement: a matrix row or a fieldset, each marked data-question.
  var groups = Array.prototype.slice.call(form.querySelectorAll("[data-question]"));
  var submit = form.querySelector("button[type=submit]");

  function checked(group) { return group.querySelector("input[type=radio]:checked"); }

  function save() {
    var data = {};
    groups.forEach(function (group) {
      var input = checked(group);
      if (input) { data[input.name] = input.value; }
    });
    try { sessionStorage.setItem(storageKey, JSON.stringify(data)); } catch (e) { /* storage off */ }
  }

  function restore() {
    var data;
    try { data = JSON.parse(sessionStorage.getItem(storageKey) || "{}"); } catch (e) { data = {}; }
    groups.forEach(function (group) {
      var value = data[group.getAttribute("data-question")];
      if (value === undefined || checked(group)) { return; }
      var input = group.querySelector("input[type=radio][value='" + String(value).replace(/[^0-9]/g, "") + "']");
      if (input) { input.checked = true; }
    });
  }

  function currentGroup() {
    var active = document.activeElement;
    var group = active && active.closest ? active.closest("[data-question]") : null;
    if (group && groups.indexOf(group) >= 0) { return group; }
    // Otherwise the first statement still unanswered, so keys walk down the page; none left
    // means every answer is given, and a stray key must not change one.
    return groups.find(function (g) { return !checked(g); }) || null;
  }

  function moveTo(element) {
    // Scroll only as far as needed; scroll-padding keeps it clear of the sticky stimulus.
    element.focus({ preventScroll: true });
    element.scrollIntoView({ block: "nearest" });
  }

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || !/^[1-9]$/.test(event.key)) { return; }
    var group = currentGroup();
    if (!group) { return; }
    var input = group.querySelector("input[type=radio][value='" + event.key + "']");
    if (!input) { return; }
    event.preventDefault();
    input.checked = true;
    save();
    var next = groups[groups.indexOf(group) + 1];
    var target = next ? checked(next) || next.querySelector("input[type=radio]") : submit;
    moveTo(target || input);
  });

  form.addEventListener("change", save);
  form.addEventListener("submit", function () {
    var ms = form.querySelector("input[name=client_ms]");
    if (ms) { ms.value = String(Math.round(performance.now() - started)); }
    try { sessionStorage.removeItem(storageKey); } catch (e) { /* storage off */ }
    // Block a second click while the first submit is in flight; the server dedupes anyway.
    if (submit) { setTimeout(function () { submit.disabled = true; }, 0); }
  });

  // Coming back with the back button shows this page from memory, its button still blocked.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && submit) { submit.disabled = false; }
  });

  restore();
  // The number keys work only with this script, so only then is the tip shown.
  var hint = document.getElementById("key-hint");
  if (hint) { hint.hidden = false; }
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
})();
