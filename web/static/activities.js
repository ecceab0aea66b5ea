/* The organizer's check-in display: poll the current code and swap the QR when it turns over.
   No framework, no inline script (the dashboard's CSP allows only files from this site). */
(function () {
  "use strict";
  var root = document.getElementById("checkin");
  if (!root) { return; }
  var codeEl = document.getElementById("checkin-code");
  var leftEl = document.getElementById("checkin-left");
  var qr = document.getElementById("checkin-qr");
  var url = root.getAttribute("data-json");
  var leftText = root.getAttribute("data-left") || "{s}";
  var refreshMs = (parseInt(root.getAttribute("data-refresh"), 10) || 5) * 1000;
  var secondsLeft = parseInt(root.getAttribute("data-left-s"), 10) || 60;
  var current = codeEl.textContent.trim();

  function showLeft() {
    leftEl.textContent = leftText.replace("{s}", String(Math.max(secondsLeft, 0)));
  }

  function schedule() {
    // Poll every few seconds, and right after the code is due to change.
    var untilChange = Math.max(secondsLeft, 1) * 1000 + 300;
    window.setTimeout(poll, Math.min(refreshMs, untilChange));
  }

  function poll() {
    fetch(url, { credentials: "same-origin", cache: "no-store", headers: { accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) {
        secondsLeft = data.seconds_left;
        if (data.code !== current) {
          current = data.code;
          codeEl.textContent = data.code;
          qr.setAttribute("src", data.qr);
        }
        root.setAttribute("data-window", data.window);
        root.classList.remove("checkin--offline");
        showLeft();
      })
      .catch(function () { root.classList.add("checkin--offline"); })
      .then(schedule);
  }

  window.setInterval(function () { secondsLeft -= 1; showLeft(); }, 1000);
  schedule();
})();
