// Review table: "Edit" opens the text in place as a textarea that posts to the same edit page
// the link goes to without JavaScript (the server keeps the history and answers with a redirect).
(function () {
  "use strict";
  var csrf = document.querySelector("#bulk-approve input[name=csrfmiddlewaretoken]");
  if (!csrf) { return; }

  function openEditor(link) {
    var row = link.closest("tr");
    var cell = row && row.querySelector(".variant-text");
    if (!cell || row.querySelector(".inline-edit")) { return false; }
    var form = document.createElement("form");
    form.method = "post";
    form.action = cell.getAttribute("data-edit-url");
    form.className = "inline-edit";
    var token = csrf.cloneNode();
    var next = document.createElement("input");
    next.type = "hidden"; next.name = "next";
    next.value = window.location.pathname + window.location.search + "#" + row.id;
    var label = document.createElement("label");
    label.textContent = "Response text";
    label.className = "visually-hidden";
    var area = document.createElement("textarea");
    area.name = "text";
    area.id = "inline-" + row.id;
    label.htmlFor = area.id;
    area.value = cell.innerText.trim();
    var save = document.createElement("button");
    save.type = "submit"; save.className = "small primary"; save.textContent = "Save";
    var cancel = document.createElement("button");
    cancel.type = "button"; cancel.className = "small secondary"; cancel.textContent = "Cancel";
    var original = cell.innerHTML;
    cancel.addEventListener("click", function () { cell.innerHTML = original; link.focus(); });
    form.append(token, next, label, area, save, document.createTextNode(" "), cancel);
    cell.innerHTML = "";
    cell.appendChild(form);
    area.focus();
    return true;
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a.edit-link");
    if (link && link.closest("table.review") && openEditor(link)) { event.preventDefault(); }
  });
})();
