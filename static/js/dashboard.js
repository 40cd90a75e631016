// Dashboard charts: the data comes from the page (json_script "dashboard-data"),
// the labels from #dashboard-labels (translated by the template). Chart.js is vendored.
(function () {
  "use strict";
  const source = document.getElementById("dashboard-data");
  if (!source || typeof Chart === "undefined") {
    return;
  }
  const data = JSON.parse(source.textContent);
  const labels = document.getElementById("dashboard-labels").dataset;
  const options = { responsive: true, maintainAspectRatio: false, plugins: { legend: { display: true } } };

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, config);
    }
  }

  draw("chart-revenue", {
    type: "bar",
    data: {
      labels: data.weekly.map((row) => row.week),
      datasets: [{ label: labels.revenue, data: data.weekly.map((row) => Number(row.revenue)) }],
    },
    options: options,
  });
  draw("chart-win-rate", {
    type: "line",
    data: {
      labels: data.weekly.map((row) => row.week),
      datasets: [{ label: labels.winRate, data: data.weekly.map((row) => row.win_rate), spanGaps: true }],
    },
    options: { ...options, scales: { y: { min: 0, max: 100 } } },
  });
  draw("chart-satisfaction", {
    type: "line",
    data: {
      labels: data.monthly.map((row) => row.month),
      datasets: [
        { label: labels.csat, data: data.monthly.map((row) => row.csat), spanGaps: true },
        { label: labels.nps, data: data.monthly.map((row) => row.nps), spanGaps: true },
      ],
    },
    options: { ...options, scales: { y: { min: -100, max: 100 } } },
  });
})();
