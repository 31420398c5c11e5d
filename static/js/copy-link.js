// "Copy" buttons for links shown as text: <button data-copy="ID" hidden> copies #ID's text.
// Without JavaScript the buttons stay hidden and the link is plain, selectable text.
(function () {
  "use strict";
  function select(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (button) {
    var id = button.getAttribute("data-copy");
    var source = document.getElementById(id);
    var status = document.querySelector("[data-copy-status='" + id + "']");
    if (!source) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var text = source.textContent.trim();
      function done(message) { if (status) { status.textContent = message; } }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(
          function () { done("Copied."); },
          function () { select(source); done("Selected: press Ctrl+C (⌘C) to copy."); }
        );
      } else {
        select(source);
        done("Selected: press Ctrl+C (⌘C) to copy.");
      }
    });
  });
})();
