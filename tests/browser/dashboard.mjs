// The dashboard in a real browser: Debian's chromium, headless, driven by playwright-core
// (both installed by scripts/setup-chromium.sh), against a server started by tests/dashboard.rs:
//
//   node tests/browser/dashboard.mjs --url http://127.0.0.1:PORT --key KEY \
//        [--chromium /usr/bin/chromium] [--screenshot PATH]
//
// Signs in through the page's form, waits for the live figures, then has test clients (browser
// WebSockets on another page of the same origin) join game rooms and publish, and checks that the
// figures the page shows change as they do (a screenshot is written meanwhile) and the busiest
// channels after; that no request left the server; and that the page logged no error (a
// Content-Security-Policy violation included). Prints `ok - NAME` /
// `not ok - NAME: DETAIL` and a closing `N passed, N failed`; exits 0 only if every check passed;
// gives up after 60 s.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '../../.cache/browser/package.json'));
const { chromium } = require('playwright-core');

const argv = process.argv.slice(2);
const arg = (name, dflt) => { const i = argv.indexOf(name); return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt; };
const base = arg('--url', 'http://127.0.0.1:7400');
const key = arg('--key', '');
const executablePath = arg('--chromium', '/usr/bin/chromium');
const screenshot = arg('--screenshot', path.join(os.tmpdir(), 'turntable-dashboard.png'));
const globalTimer = setTimeout(() => { console.log('not ok - global timeout (60 s)'); process.exit(1); }, 60000);

let passed = 0; let failed = 0;
async function check(name, fn) {
  try { await fn(); passed++; console.log(`ok - ${name}`); } catch (e) { failed++; console.log(`not ok - ${name}: ${e.message}`); }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
const figure = async (page, id) => Number((await page.textContent('#' + id)).replace(/,/g, ''));

// Test clients in a page of the dashboard's origin: each identifies, joins its room and
// publishes `count` game messages, one every `every` ms; resolves once all have been sent.
async function publish(page, rooms, count, every) {
  return page.evaluate(async ({ rooms, count, every }) => {
    const url = location.origin.replace(/^http/, 'ws') + '/turntable';
    const player = (user, room) => new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      window.players = (window.players || []).concat([ws]);
      let sent = 0;
      ws.onerror = () => reject(new Error('WebSocket error'));
      ws.onmessage = (e) => {
        const msg = JSON.parse(e.data);
        if (msg.command === 'idyou') ws.send(JSON.stringify({ command: 'idme', data: user }));
        if (msg.command === 'identified') ws.send(JSON.stringify({ command: 'joingame', data: { channel: room, self: user } }));
        if (msg.command === 'joined') {
          const timer = setInterval(() => {
            ws.send(JSON.stringify({ command: 'game', data: { channel: room, actions: [{ from: user, n: sent }] } }));
            if (++sent === count) { clearInterval(timer); resolve(); }
          }, every);
        }
      };
    });
    await Promise.all(rooms.flatMap(([room, players]) =>
      Array.from({ length: players }, (_, i) => player(`${room}-${i}`, room))));
  }, { rooms, count, every });
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'turntable-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = context.pages()[0] || await context.newPage();
  const elsewhere = []; const errors = []; // requests elsewhere; the page's errors
  context.on('request', (r) => { if (!r.url().startsWith(base + '/')) elsewhere.push(r.url()); });
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));

  await check('without the key the page asks for it', async () => {
    const response = await page.goto(base + '/dashboard');
    assert(response.status() === 401, `status ${response.status()}`);
    assert(await page.isVisible('input#key[type=password]'), 'no key field');
  });

  await check('a wrong key is refused', async () => {
    await page.fill('#key', 'not-the-key');
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert((await page.textContent('#message')).includes('not the key'), 'no message');
  });

  await check('the key opens the live dashboard', async () => {
    await page.fill('#key', key);
    errors.length = 0; // the sign-in form's 401s are logged as failed loads
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert(new URL(page.url()).pathname === '/dashboard', page.url());
    await page.waitForFunction(() => document.getElementById('status').textContent === 'live', null, { timeout: 10000 });
    await page.waitForFunction(() => /^\d/.test(document.getElementById('fig-connections').textContent), null, { timeout: 10000 });
    assert(await page.isVisible('#chart-messages canvas'), 'no chart drawn');
    assert((await page.textContent('#table-nodes')).includes('alive'), 'no node');
  });

  const before = await figure(page, 'fig-messages-in-total');
  const clients = await context.newPage();
  await clients.goto(base + '/dashboard/uPlot.LICENSE.txt');
  // 6 clients in 3 rooms, 40 messages each, one every 150 ms: about 6 s of traffic.
  const publishing = publish(clients, [['lobby-chat', 3], ['match-7', 2], ['replays', 1]], 40, 150);
  publishing.catch(() => {}); // a failure is reported where it is awaited
  const total = () => figure(page, 'fig-messages-in-total');

  await check('the figures change while test clients publish', async () => {
    await page.waitForFunction((before) => {
      const number = (id) => Number(document.getElementById(id).textContent.replace(/,/g, ''));
      return number('fig-messages-in-total') >= before + 6 * 20 && number('fig-messages-in-rate') > 0
        && number('fig-connections') === 6;
    }, before, { timeout: 15000 }).catch(async () => { throw new Error(`messages in: ${await total()}, before ${before}`); });
  });

  await check('a screenshot is written', async () => {
    await page.screenshot({ path: screenshot, fullPage: true });
    assert(fs.statSync(screenshot).size > 10000, 'screenshot too small');
  });

  await check('every test client published', () => publishing);

  await check('the busiest channels are listed with their figures', async () => {
    // The busiest room first: 3 subscribers, 3 × 40 publications (the figures lag a tick).
    const busiest = () => page.$eval('#table-channels tbody tr', (tr) => [...tr.children].map((td) => td.textContent));
    await page.waitForFunction(() => {
      const cells = [...document.querySelector('#table-channels tbody tr').children].map((td) => td.textContent);
      return cells[0] === 'turntable:lobby-chat' && cells[2] === '120';
    }, null, { timeout: 10000 }).catch(async () => { throw new Error('busiest: ' + await busiest()); });
    assert((await busiest())[1] === '3', 'busiest: ' + await busiest());
    assert(await total() >= before + 6 * 40, `messages in: ${await total()}, before ${before}`);
  });

  await check('no request left the server, and the page logged no error', async () => {
    assert(elsewhere.length === 0, 'requests elsewhere: ' + elsewhere.join(', '));
    assert(errors.length === 0, 'errors: ' + errors.join(' | '));
  });
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  clearTimeout(globalTimer);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
