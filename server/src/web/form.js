// The web form's only script. The form works without it; with it, a page whose connection
// drops keeps what was typed in this browser and sends it when the connection returns.
(function () {
  "use strict";
  var form = document.querySelector("form[data-fieldsync-form]");
  if (!form) { return; }
  var key = "fieldsync:pending:" + location.pathname;
  var tz = form.querySelector("input[name=tz]");
  if (tz) { tz.value = String(new Date().getTimezoneOffset()); }

  function banner(text) {
    var b = document.getElementById("offline");
    if (!b) {
      b = document.createElement("p");
      b.id = "offline";
      b.className = "offline";
      b.setAttribute("role", "status");
      form.parentNode.insertBefore(b, form);
    }
    b.textContent = text;
  }

  function show(html) {
    try { localStorage.removeItem(key); } catch (e) { /* private mode */ }
    document.open();
    document.write(html);
    document.close();
  }

  function send(body, attempt) {
    fetch(location.pathname, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded" }
    }).then(function (r) { return r.text(); }).then(show, function () {
      banner("No connection. Your answers are kept on this device and will be sent when the connection returns.");
      var wait = Math.min(15000, 2000 * (attempt + 1));
      setTimeout(function () { send(body, attempt + 1); }, wait);
    });
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var data = new URLSearchParams(new FormData(form));
    if (ev.submitter && ev.submitter.name) {
      data.append(ev.submitter.name, ev.submitter.value);
    }
    var body = data.toString();
    try { localStorage.setItem(key, body); } catch (e) { /* private mode */ }
    var buttons = form.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }
    send(body, 0);
  });

  // A page sent while offline whose browser was then closed: send it now.
  var pending = null;
  try { pending = localStorage.getItem(key); } catch (e) { /* private mode */ }
  if (pending) {
    banner("Sending the answers kept on this device…");
    send(pending, 0);
  }
})();
