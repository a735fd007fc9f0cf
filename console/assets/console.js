// Progressive enhancement only: every page works without this file.
// - "/" focuses the filter bar's value field (as in GuardDuty's console), Escape leaves it;
// - the value field suggests what the chosen property takes.
(function () {
  "use strict";
  var hints = {
    severity: "low, medium, high or critical (comma-separated)",
    type: "Execution:Runtime/SuspiciousTool",
    resource: "host, node, namespace, pod, container or image",
    process: "process name, e.g. nc",
    exe: "/usr/bin/nc",
    sha256: "64 hexadecimal digits",
    remote: "203.0.113.7 or example.com",
    mitre: "T1059 or T1059.004",
    since: "24h, 7d or 2026-11-27T10:00:00Z",
    until: "1h or 2026-11-27T10:00:00Z",
    status: "active, archived or all"
  };
  function ready() {
    var key = document.getElementById("filter-key");
    var value = document.getElementById("filter-value");
    if (key && value) {
      var update = function () { value.placeholder = hints[key.value] || ""; };
      key.addEventListener("change", update);
      update();
      document.addEventListener("keydown", function (e) {
        var t = e.target;
        var typing = t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA");
        if (e.key === "/" && !typing) { e.preventDefault(); value.focus(); }
        if (e.key === "Escape" && t === value) { value.blur(); }
      });
    }
    document.documentElement.setAttribute("data-enhanced", "true");
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
