// The turntable dashboard: reads a JSON snapshot each second from /dashboard/events
// (server-sent events; the sign-in cookie travels with it) and draws it with uPlot.
'use strict';

(function () {
  const KEEP = 300; // points on each chart: five minutes
  const COLOURS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d'];
  const $ = (id) => document.getElementById(id);
  const number = (v, digits = 0) => (v === null || v === undefined) ? '–'
    : Number(v).toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits });

  // One chart: its series' values over time, and its uPlot once the first snapshot says
  // how many series there are.
  function chart(id, labels, axes) {
    const data = [[]].concat(labels.map(() => []));
    const opts = {
      width: $(id).clientWidth || 480,
      height: 200,
      series: [{}].concat(labels.map((label, i) => ({
        label, stroke: COLOURS[i % COLOURS.length], width: 2,
        scale: (axes && axes[i]) || 'y', spanGaps: false,
      }))),
      axes: [{}, { scale: 'y' }].concat(axes && axes.includes('y2') ? [{ scale: 'y2', side: 1, grid: { show: false } }] : []),
      scales: { x: { time: true } },
      legend: { live: false },
    };
    const plot = new uPlot(opts, data, $(id));
    window.addEventListener('resize', () => plot.setSize({ width: $(id).clientWidth, height: 200 }));
    return {
      push(t, values) {
        data[0].push(t);
        values.forEach((v, i) => data[i + 1].push(v));
        if (data[0].length > KEEP) data.forEach((column) => column.shift());
        plot.setData(data);
      },
    };
  }

  let charts = null;
  function makeCharts(snapshot) {
    return {
      messages: chart('chart-messages', ['in', 'out']),
      writes: chart('chart-writes', ['writes/s', 'frames per write'], ['y', 'y2']),
      connections: chart('chart-connections', snapshot.shards.map((s) => 'shard ' + s.shard)),
      queues: chart('chart-queues', ['mesh', 'redis']),
    };
  }

  // A table from a header row and body rows (text only: nothing is parsed as HTML).
  function table(id, head, rows) {
    const el = $(id);
    el.replaceChildren();
    const line = (cells, tag) => {
      const tr = document.createElement('tr');
      for (const cell of cells) {
        const td = document.createElement(tag);
        td.textContent = cell;
        tr.appendChild(td);
      }
      return tr;
    };
    const thead = document.createElement('thead');
    thead.appendChild(line(head, 'th'));
    const tbody = document.createElement('tbody');
    for (const row of rows) tbody.appendChild(line(row, 'td'));
    el.append(thead, tbody);
  }

  function show(s) {
    const t = Date.now() / 1000;
    charts = charts || makeCharts(s);
    const r = s.rates;
    $('node').textContent = 'node ' + s.node;
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    $('fig-connections').textContent = number(s.connections);
    $('fig-messages-in-rate').textContent = number(r.messages_in, 1);
    $('fig-messages-in-total').textContent = number(s.messages_in);
    $('fig-messages-out-rate').textContent = number(r.messages_out, 1);
    $('fig-messages-out-total').textContent = number(s.messages_out);
    $('fig-writes-rate').textContent = number(r.writes, 1);
    $('fig-frames-per-write').textContent = number(r.frames_per_write, 2);
    $('fig-slow-consumers').textContent = number(s.slow_consumer_disconnects);
    $('fig-mesh-depth').textContent = number(s.mesh_queue_depth);
    $('fig-redis-depth').textContent = s.redis ? number(s.redis.queue_depth) : '–';
    $('fig-redis-state').textContent = s.redis
      ? (s.redis.connected ? 'connected' : 'NOT CONNECTED') + ' · ' + number(s.redis.queue_bytes) + ' bytes · ' + number(s.redis.dropped) + ' dropped'
      : 'no cluster';
    charts.messages.push(t, [r.messages_in, r.messages_out]);
    charts.writes.push(t, [r.writes, r.frames_per_write]);
    charts.connections.push(t, s.shards.map((shard) => shard.connections));
    charts.queues.push(t, [s.mesh_queue_depth, s.redis ? s.redis.queue_depth : null]);
    const dialects = Object.keys(s.dialects).filter((d) => s.dialects[d] > 0); // those in use
    table('table-shards', ['shard', 'connections'].concat(dialects, ['mesh queue']),
      s.shards.map((shard) => [shard.shard, number(shard.connections)]
        .concat(dialects.map((d) => number(shard.dialects[d])), [number(shard.mesh_queue_depth)]))
        .concat([['all', number(s.connections)].concat(dialects.map((d) => number(s.dialects[d])), [number(s.mesh_queue_depth)])]));
    table('table-nodes', ['node', 'url', 'state', 'connections'],
      s.nodes.map((n) => [n.id + (n.self ? ' (this one)' : ''), n.url || '–', n.alive ? 'alive' : 'DOWN', number(n.connections)]));
    table('table-channels', ['channel', 'subscribers', 'publications', 'per second'],
      s.channels.length ? s.channels.map((c) => [c.channel, number(c.subscribers), number(c.publications), number(c.per_second, 1)])
        : [['(none yet)', '', '', '']]);
  }

  function connect() {
    const status = $('status');
    const events = new EventSource('/dashboard/events');
    events.onopen = () => { status.textContent = 'live'; status.className = 'status live'; };
    events.onmessage = (e) => show(JSON.parse(e.data));
    events.onerror = () => {
      // EventSource retries by itself unless the server refused it (signed out, too many).
      const closed = events.readyState === EventSource.CLOSED;
      status.textContent = closed ? 'disconnected (reload to sign in again)' : 'reconnecting…';
      status.className = 'status down';
    };
  }

  connect();
})();
