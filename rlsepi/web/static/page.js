// rlsepi counsellor's page: submit without a full page reload (the page works without this file).
"use strict";
(function () {
  function bind() {
    var form = document.getElementById("risk-form");
    if (!form) { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send(form);
    });
    var file = document.getElementById("file");
    if (file) {
      file.addEventListener("change", function () { if (file.files.length) { send(form); } });
    }
    var print = document.getElementById("print");
    if (print) { print.addEventListener("click", function () { window.print(); }); }
  }

  function send(form) {
    var button = form.querySelector("button[type=submit]");
    if (button) { button.disabled = true; }
    document.body.setAttribute("aria-busy", "true");
    fetch(form.action, { method: "POST", body: new FormData(form), headers: { "X-Requested-With": "fetch" } })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("main");
        var main = document.getElementById("main");
        if (!fresh || !main) { throw new Error("unexpected answer"); }
        main.replaceWith(document.adoptNode(fresh));
        bind();
        var invalid = document.querySelector("[aria-invalid=true], .error");
        var result = document.getElementById("result-h");
        if (invalid && invalid.focus) {
          (invalid.tagName === "P" ? invalid.previousElementSibling || invalid : invalid).focus();
        } else if (result) {
          document.getElementById("result").focus();
        }
      })
      .catch(function () { form.submit(); })
      .finally(function () { document.body.removeAttribute("aria-busy"); });
  }

  document.addEventListener("DOMContentLoaded", bind);
}());
