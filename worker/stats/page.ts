/**
 * The `/stats` dashboard: one self-contained page (inline CSS, script and SVG
 * charts, nothing fetched from elsewhere) that polls `/stats` as JSON with the key
 * from its own address and draws the last few minutes.
 */
export function statsPage(pollMs: number): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>echo-edge stats</title>
<style>
  :root { --ink: #1f2430; --muted: #6b7385; --line: #e3e6ee; --card: #fff; --bg: #f4f6fa;
          --blue: #2f6fde; --green: #1f9d6b; --orange: #e07b24; --purple: #8a4fd8; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 18px 28px; background: var(--card); border-bottom: 1px solid var(--line); }
  h1 { font-size: 20px; margin: 0; }
  h2 { font-size: 14px; margin: 0 0 10px; color: var(--muted); font-weight: 600; }
  #app { font-weight: 600; }
  #status { margin-left: auto; color: var(--muted); }
  #status.down { color: #c0392b; }
  main { padding: 20px 28px; display: grid; gap: 18px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 14px; }
  .card, .panel { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
  .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .card .value { font-size: 28px; font-weight: 650; margin: 4px 0 2px; font-variant-numeric: tabular-nums; }
  .card .sub { color: var(--muted); font-size: 12px; }
  .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 14px; }
  .legend { display: flex; gap: 14px; font-size: 12px; color: var(--muted); margin-bottom: 6px; }
  .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; vertical-align: -1px; }
  svg { width: 100%; height: 200px; display: block; }
  svg text { font-size: 11px; fill: var(--muted); font-variant-numeric: tabular-nums; }
  table { width: 100%; border-collapse: collapse; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 7px 8px; border-bottom: 1px solid var(--line); }
  th { color: var(--muted); font-weight: 600; font-size: 12px; }
  td.num, th.num { text-align: right; width: 110px; }
  td.name { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
  .bar { height: 6px; border-radius: 3px; background: var(--blue); opacity: .75; min-width: 2px; }
  .kind { font-size: 11px; padding: 1px 6px; border-radius: 8px; background: #eef1f7; color: var(--muted); }
  .empty { color: var(--muted); padding: 12px 8px; }
</style>
</head>
<body>
<header>
  <h1>echo-edge</h1>
  <span>app <span id="app">…</span></span>
  <span id="uptime"></span>
  <span id="status">connecting…</span>
</header>
<main>
  <section class="cards">
    <div class="card"><div class="label">Connected clients</div><div class="value" id="clients">–</div><div class="sub" id="clients-all"></div></div>
    <div class="card"><div class="label">Active channels</div><div class="value" id="channels">–</div><div class="sub" id="channels-all"></div></div>
    <div class="card"><div class="label">Subscriptions</div><div class="value" id="subscriptions">–</div><div class="sub" id="subscriptions-all"></div></div>
    <div class="card"><div class="label">Messages received</div><div class="value" id="received">–</div><div class="sub" id="received-rate"></div></div>
    <div class="card"><div class="label">Messages delivered</div><div class="value" id="delivered">–</div><div class="sub" id="delivered-rate"></div></div>
  </section>
  <section class="charts">
    <div class="panel">
      <h2>Connections</h2>
      <div class="legend"><span><i style="background:var(--blue)"></i>clients</span><span><i style="background:var(--green)"></i>subscriptions</span></div>
      <svg id="chart-connections"></svg>
    </div>
    <div class="panel">
      <h2>Messages per second</h2>
      <div class="legend"><span><i style="background:var(--orange)"></i>received from Laravel</span><span><i style="background:var(--purple)"></i>delivered to clients</span></div>
      <svg id="chart-messages"></svg>
    </div>
  </section>
  <section class="panel">
    <h2>Busiest channels</h2>
    <table>
      <thead><tr><th>Channel</th><th>Type</th><th class="num">Subscriptions</th><th class="num">Users</th><th></th></tr></thead>
      <tbody id="channel-rows"><tr><td colspan="5" class="empty">waiting for data…</td></tr></tbody>
    </table>
  </section>
</main>
<script>
(function () {
  var POLL_MS = ${pollMs};
  var HISTORY = 120;
  var key = new URLSearchParams(location.search).get("auth_key") || "";
  var samples = [];

  function byId(id) { return document.getElementById(id); }
  function number(n) { return Math.round(n).toLocaleString("en-US"); }
  function rate(n) { return n < 10 && n !== Math.round(n) ? n.toFixed(1) : number(n); }
  function duration(seconds) {
    var s = Math.floor(seconds), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + (s % 60) + "s";
    return s + "s";
  }
  // The smallest multiple of four "round" units above the value, so all four gridlines get whole numbers.
  function niceMax(value) {
    var unit = Math.pow(10, Math.floor(Math.log10(Math.max(value, 4) / 4)));
    return Math.max(1, Math.ceil(value / (4 * unit))) * 4 * unit;
  }

  // Only numbers reach this markup; channel names go through textContent below.
  function drawChart(svg, series) {
    // Drawn at the element's own size, so text and strokes are never stretched.
    var W = svg.clientWidth || 600, H = svg.clientHeight || 200, left = 48, right = 8, top = 10, bottom = 22;
    svg.setAttribute("viewBox", "0 0 " + W + " " + H);
    var points = samples.length;
    var max = niceMax(Math.max.apply(null, series.map(function (s) { return Math.max.apply(null, s.values.concat([0])); })));
    var parts = [];
    for (var g = 0; g <= 4; g++) {
      var y = top + (H - top - bottom) * g / 4;
      parts.push('<line x1="' + left + '" x2="' + (W - right) + '" y1="' + y + '" y2="' + y + '" stroke="#e3e6ee"/>');
      parts.push('<text x="' + (left - 6) + '" y="' + (y + 4) + '" text-anchor="end">' + rate(max * (4 - g) / 4) + '</text>');
    }
    if (points > 1) {
      var span = (samples[points - 1].t - samples[0].t) / 1000;
      parts.push('<text x="' + left + '" y="' + (H - 5) + '">' + duration(span) + ' ago</text>');
      parts.push('<text x="' + (W - right) + '" y="' + (H - 5) + '" text-anchor="end">now</text>');
    }
    var bottomY = H - bottom;
    series.forEach(function (s) {
      if (s.values.length === 0) return;
      var offset = points - s.values.length;
      var xy = s.values.map(function (v, i) {
        return [left + (W - left - right) * (points > 1 ? (i + offset) / (points - 1) : 1), top + (bottomY - top) * (1 - v / max)];
      });
      // A single sample is drawn as a level line from the left edge.
      if (xy.length === 1) xy.unshift([left, xy[0][1]]);
      var line = xy.map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join(" ");
      var area = xy[0][0].toFixed(1) + "," + bottomY + " " + line + " " + xy[xy.length - 1][0].toFixed(1) + "," + bottomY;
      parts.push('<polygon points="' + area + '" fill="' + s.color + '" opacity="0.08"/>');
      parts.push('<polyline points="' + line + '" fill="none" stroke="' + s.color + '" stroke-width="2" stroke-linejoin="round"/>');
    });
    svg.innerHTML = parts.join("");
  }

  function renderChannels(rows) {
    var body = byId("channel-rows");
    body.textContent = "";
    if (!rows.length) {
      var empty = body.insertRow();
      var cell = empty.insertCell();
      cell.colSpan = 5;
      cell.className = "empty";
      cell.textContent = "no occupied channels";
      return;
    }
    var top = Math.max(1, rows[0].subscription_count);
    rows.forEach(function (row) {
      var tr = body.insertRow();
      var name = tr.insertCell(); name.className = "name"; name.textContent = row.name;
      var type = tr.insertCell(); var badge = document.createElement("span"); badge.className = "kind"; badge.textContent = row.kind; type.appendChild(badge);
      var subs = tr.insertCell(); subs.className = "num"; subs.textContent = number(row.subscription_count);
      var users = tr.insertCell(); users.className = "num"; users.textContent = row.user_count === null ? "–" : number(row.user_count);
      var barCell = tr.insertCell(); barCell.style.width = "28%";
      var bar = document.createElement("div"); bar.className = "bar"; bar.style.width = (100 * row.subscription_count / top) + "%"; barCell.appendChild(bar);
    });
  }

  function render(stats) {
    var app = stats.app;
    var now = Date.now();
    var previous = samples[samples.length - 1];
    var sample = { t: now, clients: app.clients, subscriptions: app.subscriptions, received: app.messages_received, delivered: app.messages_delivered };
    if (previous) {
      var seconds = Math.max(0.001, (now - previous.t) / 1000);
      sample.receivedRate = Math.max(0, sample.received - previous.received) / seconds;
      sample.deliveredRate = Math.max(0, sample.delivered - previous.delivered) / seconds;
    }
    samples.push(sample);
    if (samples.length > HISTORY) samples.shift();

    byId("app").textContent = app.id;
    byId("uptime").textContent = "up " + duration(app.uptime);
    byId("clients").textContent = number(app.clients);
    byId("channels").textContent = number(app.channels);
    byId("subscriptions").textContent = number(app.subscriptions);
    byId("received").textContent = number(app.messages_received);
    byId("delivered").textContent = number(app.messages_delivered);
    byId("clients-all").textContent = number(stats.clients) + " across all apps";
    byId("channels-all").textContent = number(stats.channels) + " across all apps";
    byId("subscriptions-all").textContent = number(stats.subscriptions) + " across all apps";
    byId("received-rate").textContent = sample.receivedRate === undefined ? "measuring…" : rate(sample.receivedRate) + " per second";
    byId("delivered-rate").textContent = sample.deliveredRate === undefined ? "measuring…" : rate(sample.deliveredRate) + " per second";

    drawChart(byId("chart-connections"), [
      { color: "#2f6fde", values: samples.map(function (s) { return s.clients; }) },
      { color: "#1f9d6b", values: samples.map(function (s) { return s.subscriptions; }) },
    ]);
    var rated = samples.filter(function (s) { return s.receivedRate !== undefined; });
    drawChart(byId("chart-messages"), [
      { color: "#e07b24", values: rated.map(function (s) { return s.receivedRate; }) },
      { color: "#8a4fd8", values: rated.map(function (s) { return s.deliveredRate; }) },
    ]);
    renderChannels(app.busiest_channels);
  }

  function setStatus(text, healthy) {
    var status = byId("status");
    status.textContent = text;
    status.className = healthy ? "" : "down";
  }

  function poll() {
    fetch(location.pathname + "?auth_key=" + encodeURIComponent(key), { headers: { accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (stats) {
        render(stats);
        setStatus("updated " + new Date().toLocaleTimeString("en-GB"), true);
      })
      .catch(function (error) { setStatus("cannot reach /stats: " + error.message, false); })
      .then(function () { setTimeout(poll, POLL_MS); });
  }
  poll();
})();
</script>
</body>
</html>
`;
}
