// heistwatch web UI: draw the figures the page carries as JSON, open what a graph node points at, load cases.
"use strict";

document.querySelectorAll("script.plotly-figure").forEach(function (block) {
  if (typeof Plotly === "undefined") { return; }
  var figure = JSON.parse(block.textContent);
  var target = document.getElementById(block.dataset.target);
  Plotly.newPlot(target, figure.data, figure.layout, {responsive: true, displaylogo: false}).then(function () {
    target.classList.add("drawn");
    target.on("plotly_click", function (event) {
      var url = event.points.length ? event.points[0].customdata : null;
      if (typeof url === "string" && url.charAt(0) === "/") { window.location.assign(url); }
    });
  });
});

var upload = document.getElementById("case-upload");
if (upload) {
  upload.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = upload.elements.report.files[0];
    var status = upload.elements.status;
    var tlp = upload.elements.tlp.value;
    status.textContent = "loading…";
    file.text().then(function (text) {
      return fetch(upload.dataset.endpoint + "?tlp=" + encodeURIComponent(tlp), {
        method: "POST",
        headers: {"Content-Type": "application/json"},
        body: text,
        credentials: "same-origin"
      });
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (answer) {
      if (answer.ok) { window.location.assign(answer.body.case.url); return; }
      var error = answer.body.error || {where: "request", problem: JSON.stringify(answer.body.detail)};
      status.textContent = error.where + ": " + error.problem;
    }).catch(function (error) { status.textContent = String(error); });
  });
}
