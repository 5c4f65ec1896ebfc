/*
 * clockchain status page: polls ?format=json at this address every 2 s
 * and shows it.  Every string from the JSON goes into the page as text
 * (textContent, SVG attributes), never as markup.
 */

(function () {
  'use strict';

  var POLL_MS = 2000;
  var TIMEOUT_MS = 5000;
  var SVG = 'http://www.w3.org/2000/svg';
  var polls = 0;
  var lastGood = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }

  function svg(tag, attrs, text) {
    var e = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      e.setAttribute(k, String(attrs[k]));
    });
    if (text !== undefined) { e.textContent = String(text); }
    return e;
  }

  function clear(e) {
    while (e.firstChild) { e.removeChild(e.firstChild); }
    return e;
  }

  function num(v) {
    return typeof v === 'number' && isFinite(v) ? v : 0;
  }

  function fmt(v) {
    return num(v).toLocaleString('en-US');
  }

  function clock(sec) {
    var d = new Date(sec * 1000);
    return d.toLocaleTimeString('en-GB', { hour12: false });
  }

  function duration(ms) {
    if (ms < 1000) { return ms + ' ms'; }
    if (ms < 120000) { return (ms / 1000).toFixed(1) + ' s'; }
    return Math.round(ms / 60000) + ' min';
  }

  function text(id, v) { $(id).textContent = String(v); }

  /* a list of [term, value, class] as dt/dd pairs */
  function pairs(id, rows) {
    var dl = clear($(id));
    rows.forEach(function (r) {
      dl.appendChild(el('dt', null, r[0]));
      dl.appendChild(el('dd', r[2] || null, r[1]));
    });
  }

  function alertShow(msg) {
    var a = $('alert');
    a.textContent = msg;
    a.hidden = false;
  }

  function alertHide() { $('alert').hidden = true; }

  /* ---- the queue over the last 15 minutes: two lines, SVG ---- */

  function queueChart(d) {
    var box = clear($('queue-chart'));
    /* drawn at the width it has, so that its text stays its size */
    var W = Math.max(280, Math.round(box.clientWidth || 900));
    var H = 180, L = 44, R = 8, T = 10, B = 22;
    var h = d.history || {};
    var full = num(h.every) * num(h.max) || 900;
    var now = num(d.time);
    var pts = (h.samples || []).filter(function (s) {
      return num(s.at) > now - full;
    });
    /* the time there are samples for, from 2 minutes to the whole window */
    var span = Math.min(full, Math.max(120, pts.length
                                              ? now - num(pts[0].at) : 0));
    var jobs = d.jobs || {};
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img',
                         'aria-label': 'pending and processing jobs' });
    var max = 1;
    var first, last;

    /* the live value last, so the line moves between samples */
    pts = pts.concat([{ at: now, pending: jobs.pending,
                        processing: jobs.processing,
                        completed: jobs.completed, failed: jobs.failed }]);

    pts.forEach(function (p) {
      max = Math.max(max, num(p.pending), num(p.processing));
    });

    function x(at) { return L + (W - L - R) * (1 - (now - at) / span); }
    function y(v) { return T + (H - T - B) * (1 - num(v) / max); }

    s.appendChild(svg('line', { x1: L, y1: H - B, x2: W - R, y2: H - B,
                                'class': 'axis' }));
    s.appendChild(svg('line', { x1: L, y1: T, x2: L, y2: H - B,
                                'class': 'axis' }));
    s.appendChild(svg('text', { x: L - 6, y: T + 9, 'text-anchor': 'end',
                                'class': 'label' }, fmt(max)));
    s.appendChild(svg('text', { x: L - 6, y: H - B, 'text-anchor': 'end',
                                'class': 'label' }, '0'));
    s.appendChild(svg('text', { x: L, y: H - 6, 'class': 'label' },
                      Math.round(span / 60) + ' min ago'));
    s.appendChild(svg('text', { x: W - R, y: H - 6, 'text-anchor': 'end',
                                'class': 'label' }, 'now'));

    ['pending', 'processing'].forEach(function (k) {
      var line = pts.map(function (p) {
        return x(num(p.at)).toFixed(1) + ',' + y(p[k]).toFixed(1);
      }).join(' ');
      s.appendChild(svg('polyline', { points: line, 'class': k }));
    });

    if (pts.length < 2) {
      s.appendChild(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle',
                                  'class': 'empty' },
                        d.runner && d.runner.configured
                        ? 'the first sample is taken within 10 s'
                        : 'no runner on this nginx: no samples'));
    }

    box.appendChild(s);

    first = pts[0];
    last = pts[pts.length - 1];
    text('queue-rates', pts.length > 1
         ? '  \u00b7  in this window: '
           + fmt(num(last.completed) - num(first.completed)) + ' completed, '
           + fmt(num(last.failed) - num(first.failed)) + ' failed'
         : '');
  }

  /* ---- Flash latency: a bar per bucket ---- */

  function flashChart(f) {
    var box = clear($('flash-chart'));
    var W = Math.max(280, Math.round(box.clientWidth || 360));
    var H = 150, B = 34, T = 14;
    var buckets = (f && f.buckets) || [];
    var s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img',
                         'aria-label': 'Flash call durations' });
    var max = 1;
    var bw = buckets.length ? W / buckets.length : W;

    buckets.forEach(function (b) { max = Math.max(max, num(b.count)); });

    buckets.forEach(function (b, i) {
      var c = num(b.count);
      var h = (H - B - T) * c / max;
      var label = b.le === null ? '>' + buckets[i - 1].le : '\u2264' + b.le;
      s.appendChild(svg('rect', { x: i * bw + 3, y: H - B - h,
                                  width: Math.max(bw - 6, 1), height: h,
                                  'class': 'barrect' }));
      if (c) {
        s.appendChild(svg('text', { x: i * bw + bw / 2, y: H - B - h - 3,
                                    'text-anchor': 'middle',
                                    'class': 'label' }, fmt(c)));
      }
      s.appendChild(svg('text', { x: i * bw + bw / 2, y: H - B + 13,
                                  'text-anchor': 'middle', 'class': 'label' },
                        label));
    });

    s.appendChild(svg('text', { x: W / 2, y: H - 4, 'text-anchor': 'middle',
                                'class': 'label' }, 'seconds'));
    box.appendChild(s);

    text('flash-summary', num(f && f.count)
         ? fmt(f.count) + ' calls, mean '
           + (num(f.sum) / num(f.count)).toFixed(2) + ' s'
         : 'no Flash call has ended yet');
  }

  /* ---- the rest ---- */

  function runner(r) {
    if (!r.configured) {
      pairs('runner', [['role', 'no clockchain_flash_url on this nginx']]);
      return;
    }
    pairs('runner', [
      ['worker pid', r.pid ? r.pid : 'none', r.pid ? null : 'warn'],
      ['generation', r.generation],
      ['ticking', r.ticking ? 'yes' : 'no (last tick '
                  + (r.last_tick_ms_ago < 0 ? 'never'
                     : duration(r.last_tick_ms_ago) + ' ago') + ')',
       r.ticking ? 'good' : 'warn'],
      ['calls in flight', fmt(r.in_flight)],
      ['circuit breaker', r.breaker === 'open'
         ? 'open for ' + duration(num(r.breaker_open_ms)) + ' more'
         : 'closed (' + fmt(r.breaker_failures) + ' of '
           + fmt(r.breaker_threshold) + ' failures in a row)',
       r.breaker === 'open' ? 'warn' : 'good']
    ]);
  }

  function redis(r) {
    var rows = [
      ['reachable', r.reachable ? 'yes' : 'no', r.reachable ? 'good' : 'warn'],
      ['this worker', r.connected ? 'connected' : 'not connected',
       r.connected ? 'good' : 'warn'],
      ['address', r.address === null ? 'not known yet' : r.address]
    ];
    if (r.sentinel) {
      rows.push(['sentinel master', r.sentinel.master_name]);
      rows.push(['sentinels', fmt(r.sentinel.sentinels)]);
      rows.push(['master now', r.sentinel.master === null ? 'not known'
                                                          : r.sentinel.master]);
    }
    if (r.error) { rows.push(['error', r.error, 'warn']); }
    pairs('redis', rows);
  }

  function zone(z, waiters) {
    var fill = Math.max(0, Math.min(1, num(z.fill)));
    $('zone-fill').style.width = (fill * 100).toFixed(1) + '%';
    pairs('zone', [
      ['fill', (fill * 100).toFixed(1) + '% of ' + fmt(z.pages) + ' pages'],
      ['jobs cached', fmt(z.jobs)],
      ['moments cached', fmt(z.moments)],
      ['evictions', fmt(z.evictions)],
      ['long-poll waiters', fmt(waiters)]
    ]);
  }

  function failures(list, redisUp) {
    var ol = clear($('failures'));
    if (list === null || list === undefined) {
      text('failures-note', redisUp ? '' : 'Redis cannot be reached: the '
           + 'failures are not known right now.');
      return;
    }
    text('failures-note', list.length ? 'Newest first, the last '
         + list.length + ' kept in Redis.' : 'No job has failed.');
    list.forEach(function (f) {
      var li = el('li');
      li.appendChild(el('span', 'id', f.id));
      li.appendChild(el('span', 'at', f.at));
      li.appendChild(el('span', 'error', f.error));
      ol.appendChild(li);
    });
  }

  function show(d) {
    var j = d.jobs || {};
    text('jobs-pending', fmt(j.pending));
    text('jobs-processing', fmt(j.processing));
    text('jobs-completed', fmt(j.completed));
    text('jobs-failed', fmt(j.failed));
    text('jobs-created', fmt(j.created));
    queueChart(d);
    runner(d.runner || {});
    flashChart(d.flash_latency);
    redis(d.redis || {});
    zone(d.zone || {}, d.waiters);
    failures(d.failures, d.redis && d.redis.reachable);
    text('meta', 'module ' + d.version + ' \u00b7 answered by worker '
         + d.pid + ' \u00b7 updated ' + clock(num(d.time)));
  }

  function poll() {
    var ctl = window.AbortController ? new AbortController() : null;
    var timer = ctl ? setTimeout(function () { ctl.abort(); }, TIMEOUT_MS)
                    : null;

    fetch('?format=json', { cache: 'no-store', credentials: 'same-origin',
                            signal: ctl ? ctl.signal : undefined })
      .then(function (res) {
        if (!res.ok) { throw new Error('HTTP ' + res.status); }
        return res.json();
      })
      .then(function (d) {
        lastGood = d;
        show(d);
        alertHide();
      })
      .catch(function (e) {
        alertShow('The status cannot be fetched (' + (e && e.name === 'AbortError'
                  ? 'no answer within ' + TIMEOUT_MS / 1000 + ' s'
                  : String(e && e.message ? e.message : e))
                  + '). ' + (lastGood ? 'What is shown is from '
                  + clock(num(lastGood.time)) + '.' : 'Nothing to show yet.')
                  + ' Retrying every ' + POLL_MS / 1000 + ' s.');
      })
      .then(function () {
        if (timer) { clearTimeout(timer); }
        polls++;
        document.body.setAttribute('data-polls', String(polls));
        setTimeout(poll, POLL_MS);
      });
  }

  poll();
}());
