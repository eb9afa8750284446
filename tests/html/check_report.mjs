// Checks a headlens HTML report in headless Chromium, driven over the Chrome DevTools Protocol on a pipe
// (--remote-debugging-pipe: no port, no npm package, Node's standard library only).
//
//   node check_report.mjs --page REPORT.html --layers L --heads H [--examples N] [--text STRING]...
//                         [--causal N] [--screenshot OUT.png] [--chromium PATH]
//
// Asserts, with numbers given by the caller (not read from the page):
// - the page loads with no console error, no uncaught exception, no failed load and no request other than its own
//   file (every text is inline);
// - the grid has exactly L x H head cells, one per (layer, head);
// - clicking cells (real mouse events at each cell's position) selects that head: the title says "Layer l, head h",
//   both canvases are drawn for that head, have ink, and differ from the previous head's pictures; hovering a
//   query token on the lines view redraws it with that row alone, and leaving restores it;
// - picking another example sentence redraws the map; the picker lists N examples;
// - with --causal N: the causal-check table has one row per category (4), N of them have a drawn effect strip (the
//   labels that were tested), and the selected head's panel says how its label fared;
// - every --text string appears verbatim in the page's text (hostile strings like `</script>` shown as text), and
//   no script planted in the data ran (window.headlensInjected stays undefined).
// Chromium missing: fails when CI=true, else prints "SKIPPED: ..." (the CTest skip pattern) and exits 0.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const args = { texts: [] };
for (let i = 2; i < process.argv.length; i += 2) {
  const key = process.argv[i], value = process.argv[i + 1];
  if (value === undefined) usage(`${key} needs a value`);
  if (key === '--page') args.page = value;
  else if (key === '--layers') args.layers = Number(value);
  else if (key === '--heads') args.heads = Number(value);
  else if (key === '--examples') args.examples = Number(value);
  else if (key === '--text') args.texts.push(value);
  else if (key === '--causal') args.causal = Number(value);
  else if (key === '--screenshot') args.screenshot = value;
  else if (key === '--chromium') args.chromium = value;
  else usage(`unknown option ${key}`);
}
if (!args.page || !(args.layers > 0) || !(args.heads > 0)) usage('--page, --layers and --heads are required');

function usage(message) {
  console.error(`check_report: ${message}\nusage: node check_report.mjs --page FILE --layers L --heads H ` +
                '[--examples N] [--text S]... [--causal N] [--screenshot OUT.png] [--chromium PATH]');
  process.exit(2);
}

const chromium = args.chromium || process.env.HEADLENS_CHROMIUM ||
                 ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
if (!chromium || !existsSync(chromium)) {
  const why = 'no Chromium (install the Debian package `chromium`: tools/install-chromium.sh)';
  if (process.env.CI === 'true') {
    console.error(`check_report: FAILED: ${why}; CI=true, so the browser test may not be skipped`);
    process.exit(1);
  }
  console.log(`SKIPPED: ${why}`);
  process.exit(0);
}

let passed = 0, failed = 0;
function check(ok, what, detail = '') {
  if (ok) { ++passed; console.log(`ok   ${what}`); }
  else { ++failed; console.log(`FAIL ${what}${detail ? ': ' + detail : ''}`); }
  return ok;
}

// ---- Chromium and the protocol -----------------------------------------------------------------------------------
const profile = mkdtempSync(join(tmpdir(), 'headlens-chromium-'));
const browser = spawn(chromium, [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic', '--no-first-run', '--no-default-browser-check', '--mute-audio',
  '--hide-scrollbars', '--allow-file-access-from-files', `--user-data-dir=${profile}`, '--remote-debugging-pipe',
  'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
let browserLog = '';
browser.stderr.on('data', (d) => { browserLog = (browserLog + d).slice(-4000); });
let exited = false;
browser.on('exit', () => { exited = true; });
const toBrowser = browser.stdio[3], fromBrowser = browser.stdio[4];

let nextId = 1;
const pending = new Map();
const listeners = [];
let buffer = '';
fromBrowser.on('data', (chunk) => {
  buffer += chunk.toString('utf8');
  let end;
  while ((end = buffer.indexOf('\0')) >= 0) {
    const message = JSON.parse(buffer.slice(0, end));
    buffer = buffer.slice(end + 1);
    if (message.id !== undefined && pending.has(message.id)) {
      const { resolve: ok, reject, method } = pending.get(message.id);
      pending.delete(message.id);
      if (message.error) reject(new Error(`${method}: ${message.error.message}`));
      else ok(message.result);
    } else if (message.method) {
      for (const listener of listeners) listener(message);
    }
  }
});

function send(method, params = {}, sessionId = undefined) {
  const id = nextId++;
  const message = { id, method, params };
  if (sessionId) message.sessionId = sessionId;
  return new Promise((ok, reject) => {
    pending.set(id, { resolve: ok, reject, method });
    toBrowser.write(JSON.stringify(message) + '\0');
  });
}
function waitFor(predicate, what, ms = 30000) {
  return new Promise((ok, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    listeners.push((m) => { if (predicate(m)) { clearTimeout(timer); ok(m); } });
  });
}
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

const problems = [];  // console errors, exceptions, failed loads, outside requests
const pageUrl = pathToFileURL(resolve(args.page)).href;

async function main() {
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  const s = (method, params) => send(method, params, sessionId);
  listeners.push((m) => {
    if (m.sessionId !== sessionId) return;
    const p = m.params;
    if (m.method === 'Runtime.consoleAPICalled' && (p.type === 'error' || p.type === 'assert')) {
      problems.push(`console.${p.type}: ${p.args.map((a) => a.value ?? a.description ?? '').join(' ')}`);
    } else if (m.method === 'Runtime.exceptionThrown') {
      const d = p.exceptionDetails;
      problems.push(`exception: ${d.exception?.description ?? d.text} (line ${d.lineNumber + 1})`);
    } else if (m.method === 'Log.entryAdded' && p.entry.level === 'error') {
      problems.push(`log: ${p.entry.text}${p.entry.url ? ' ' + p.entry.url : ''}`);
    } else if (m.method === 'Network.requestWillBeSent') {
      const url = p.request.url;
      if (url !== pageUrl && !url.startsWith('data:') && !url.startsWith('about:')) problems.push(`request: ${url}`);
    } else if (m.method === 'Network.loadingFailed') {
      problems.push(`load failed: ${p.errorText}`);
    }
  });
  await s('Runtime.enable');
  await s('Log.enable');
  await s('Network.enable');
  await s('Page.enable');
  await s('Emulation.setDeviceMetricsOverride', { width: 1400, height: 1000, deviceScaleFactor: 1, mobile: false });

  const loaded = waitFor((m) => m.sessionId === sessionId && m.method === 'Page.loadEventFired', 'the page to load',
                         60000);
  const nav = await s('Page.navigate', { url: pageUrl });
  check(!nav.errorText, 'navigate to the page', nav.errorText);
  await loaded;

  async function evaluate(expression) {
    const r = await s('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error(`evaluate ${expression.slice(0, 60)}: ${r.exceptionDetails.text}`);
    return r.result.value;
  }
  let ready = false;
  for (let i = 0; i < 100 && !ready; ++i) {
    ready = await evaluate("document.documentElement.getAttribute('data-headlens-ready') === '1'");
    if (!ready) await sleep(50);
  }
  check(ready, 'the page script ran to its end (data-headlens-ready)');

  // The grid: one cell per head, each (layer, head) once.
  const cells = await evaluate(`Array.from(document.querySelectorAll('#grid .cell')).map(
      (c) => c.getAttribute('data-layer') + ':' + c.getAttribute('data-head'))`);
  const expected = [];
  for (let l = 0; l < args.layers; ++l) for (let h = 0; h < args.heads; ++h) expected.push(`${l}:${h}`);
  check(cells.length === args.layers * args.heads, `the grid has ${args.layers} x ${args.heads} cells`,
        `found ${cells.length}`);
  check(JSON.stringify([...cells].sort()) === JSON.stringify([...expected].sort()), 'one cell per (layer, head)',
        cells.join(' '));

  // A picture of a canvas: a hash of its pixels and how many pixels are not background.
  const picture = (id) => evaluate(`(() => {
      const c = document.getElementById('${id}');
      if (!c || c.width < 2 || c.height < 2 || c.offsetParent === null) return { ink: 0, hash: 0, head: null };
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let ink = 0, hash = 0;
      for (let i = 0; i < d.length; i += 4) {
        const background = d[i + 3] === 0 || (d[i] > 250 && d[i + 1] > 250 && d[i + 2] > 250);
        if (!background) ++ink;
        hash = (hash * 31 + d[i] + 7 * d[i + 1] + 13 * d[i + 2] + 17 * d[i + 3]) >>> 0;
      }
      return { ink, hash, head: c.getAttribute('data-head') };
    })()`);

  async function clickCell(layer, head) {
    const box = await evaluate(`(() => {
        const c = document.querySelector('#grid .cell[data-layer="${layer}"][data-head="${head}"]');
        if (!c) return null;
        c.scrollIntoView({ block: 'center', inline: 'center' });
        const r = c.getBoundingClientRect();
        return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
      })()`);
    if (!check(box !== null, `cell layer ${layer} head ${head} exists`)) return;
    for (const type of ['mouseMoved', 'mousePressed', 'mouseReleased']) {
      await s('Input.dispatchMouseEvent', { type, x: box.x, y: box.y, button: 'left', clickCount: 1 });
    }
  }
  // Polls `expression` until it is true (the page is given up to 5 s on a loaded machine).
  async function until(expression) {
    for (let i = 0; i < 100; ++i) {
      if (await evaluate(expression)) return true;
      await sleep(50);
    }
    return false;
  }

  // Click the last head, then the first, then one in the middle: each must draw its own map.
  const picks = [[args.layers - 1, args.heads - 1], [0, 0], [Math.floor(args.layers / 2), Math.floor(args.heads / 2)]];
  let previous = null;
  for (const [l, h] of picks) {
    await clickCell(l, h);
    await until(`document.getElementById('detail-title').textContent === 'Layer ${l}, head ${h}'`);
    const title = await evaluate("document.getElementById('detail-title').textContent");
    check(title === `Layer ${l}, head ${h}`, `clicking layer ${l} head ${h} sets the title`, `title is "${title}"`);
    const selected = await evaluate(`document.querySelectorAll('#grid .cell.selected').length === 1 &&
        document.querySelector('#grid .cell.selected').getAttribute('data-layer') === '${l}' &&
        document.querySelector('#grid .cell.selected').getAttribute('data-head') === '${h}'`);
    check(selected, `layer ${l} head ${h} is the one selected cell`);
    const evidence = await evaluate("document.querySelectorAll('#evidence tr').length");
    check(evidence >= 2, `layer ${l} head ${h}: the evidence table has rows`, `${evidence} rows`);
    if (args.examples > 0) {
      const lines = await picture('lines'), heat = await picture('heatmap');
      check(lines.head === `${l}:${h}` && heat.head === `${l}:${h}`, `layer ${l} head ${h}: both canvases drawn for it`,
            `lines ${lines.head}, heatmap ${heat.head}`);
      check(lines.ink > 200 && heat.ink > 200, `layer ${l} head ${h}: both canvases have ink`,
            `lines ${lines.ink} px, heatmap ${heat.ink} px`);
      if (previous && (previous.l !== l || previous.h !== h)) {
        check(heat.hash !== previous.heat, `layer ${l} head ${h}: its heatmap differs from the previous head's`);
      }
      previous = { l, h, heat: heat.hash };
    }
  }

  // Hovering the first query token on the lines view shows its row alone: the picture changes, and changes back.
  if (args.examples > 0) {
    const box = await evaluate(`(() => { const c = document.getElementById('lines');
        c.scrollIntoView({ block: 'center' }); const r = c.getBoundingClientRect();
        return { x: r.left + 40, y: r.top + 18, leaveX: r.right + 40 }; })()`);
    const before = await picture('lines');
    await s('Input.dispatchMouseEvent', { type: 'mouseMoved', x: box.x, y: box.y });
    await sleep(50);  // the handler draws at once; leave the renderer a frame all the same
    const hovered = await picture('lines');
    await s('Input.dispatchMouseEvent', { type: 'mouseMoved', x: box.leaveX, y: box.y });
    await sleep(50);
    const left = await picture('lines');
    check(hovered.ink > 100 && hovered.hash !== before.hash && left.hash === before.hash,
          'hovering the first token of the lines view shows its row alone, and leaving restores the view');
  }

  // The sentence picker.
  const options = await evaluate("document.querySelectorAll('#example option').length");
  if (args.examples !== undefined) {
    check(options === Math.max(1, args.examples), `the sentence picker lists ${args.examples} examples`,
          `${options} options`);
  }
  if (args.examples > 1) {
    const before = await picture('heatmap');
    await evaluate(`(() => { const p = document.getElementById('example'); p.value = '1';
        p.dispatchEvent(new Event('change')); })()`);
    const after = await picture('heatmap');
    check(after.ink > 200 && after.hash !== before.hash, 'picking example 2 redraws the heatmap');
  }

  // The causal check: a row per category, a strip with ink for each tested label, a line in the head panel.
  if (args.causal !== undefined) {
    const causal = await evaluate(`(() => {
        const rows = Array.from(document.querySelectorAll('#causal-table tr[data-label]'));
        let strips = 0;
        for (const r of rows) {
          const c = r.querySelector('canvas');
          if (!c || c.width < 2) continue;
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let ink = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i] > 0) ++ink;
          if (ink > 20) ++strips;
        }
        const line = document.getElementById('detail-causal');
        return { rows: rows.length, strips, line: line ? line.textContent : null };
      })()`);
    check(causal.rows === 4, 'the causal-check table has a row per category', `${causal.rows} rows`);
    check(causal.strips === args.causal, `${args.causal} causal-check rows draw the label against the random sets`,
          `${causal.strips} strips`);
    check(causal.line !== null && /^(Causal check of the |Unassigned)/.test(causal.line),
          'the head panel says how its label fared in the causal check', `${causal.line}`);
  }

  // Text shown as text, nothing injected.
  const text = await evaluate("document.body.innerText + '\\n' + Array.from(document.querySelectorAll('option'))" +
                              ".map((o) => o.textContent).join('\\n')");
  for (const t of args.texts) check(text.includes(t), `the page shows ${JSON.stringify(t)} as text`);
  const injected = await evaluate("typeof window.headlensInjected === 'undefined' && !document.querySelector('.injected')");
  check(injected, 'no script or markup from the data ran or was added');
  const recorded = await evaluate('window.headlensErrors || ["window.headlensErrors missing"]');
  for (const e of recorded) problems.push(`recorded by the page: ${e}`);

  if (args.screenshot) {
    const shot = await s('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true });
    writeFileSync(args.screenshot, Buffer.from(shot.data, 'base64'));
    console.log(`screenshot: ${args.screenshot}`);
  }
  await sleep(100);  // late console messages
  check(problems.length === 0, 'no console error, exception, failed load or outside request', problems.join(' | '));
  await send('Browser.close').catch(() => {});
}

const watchdog = setTimeout(() => { console.log('FAIL the check took over 120 s'); finish(1); }, 120000);
function finish(code) {
  clearTimeout(watchdog);
  if (!exited) browser.kill('SIGKILL');
  try { rmSync(profile, { recursive: true, force: true }); } catch { /* a profile left in TMPDIR is harmless */ }
  if (code !== 0 && browserLog) console.log(`chromium stderr (last lines):\n${browserLog}`);
  process.exit(code);
}
browser.on('error', (e) => { console.log(`FAIL cannot start ${chromium}: ${e.message}`); finish(1); });
main().then(() => {
  console.log(`check_report: ${passed} passed, ${failed} failed`);
  setTimeout(() => finish(failed === 0 ? 0 : 1), exited ? 0 : 300);
}, (e) => {
  console.log(`FAIL ${e.message}`);
  console.log(`check_report: ${passed} passed, ${failed + 1} failed`);
  finish(1);
});
