// Opens a scorenmf report.html in headless Chromium and checks that the page works as a reader
// sees it: every image (HTML and SVG) decodes, every audio element loads its metadata, the
// notes' table sorts, and the console shows no error. Saves a full-page screenshot (its first
// 16000 px). A long recording's pages of the spectrogram are loaded too.
//
//   node check.mjs REPORT.html SCREENSHOT.png [TOP.png]
//
// TOP.png, if given: the first screen only (1280 × 1200), as the README shows it.
//
// Prints one JSON line with what it counted; exit code 1 with the reasons when a check fails.
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const [page_path, shot, top] = process.argv.slice(2);
if (!page_path || !shot) {
  console.error('usage: node check.mjs REPORT.html SCREENSHOT.png');
  process.exit(2);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required'],
});
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  // A media element that has read what preload="metadata" needs cancels the rest of its file
  // (net::ERR_ABORTED): not a failure; whether each player loaded is checked below.
  page.on('requestfailed', (r) => {
    const why = r.failure()?.errorText;
    if (!(r.resourceType() === 'media' && why === 'net::ERR_ABORTED')) problems.push(`request failed: ${r.url()} (${why})`);
  });
  await page.goto(pathToFileURL(path.resolve(page_path)).href, { waitUntil: 'load' });
  const found = await page.evaluate(async () => {
    const failures = [];
    const zoom = document.getElementById('zoom-data');
    const tiles = zoom ? JSON.parse(zoom.textContent).tiles.map((t) => new URL(t.file, document.baseURI).href) : [];
    const srcs = [...new Set([...document.querySelectorAll('img')].map((i) => i.src)
      .concat([...document.querySelectorAll('svg image')].map((i) => new URL(i.getAttribute('href'), document.baseURI).href))
      .concat(tiles))];
    const images = await Promise.all(srcs.map((src) => new Promise((ok) => {
      const im = new Image();
      im.onload = () => ok(im.naturalWidth > 0 ? null : `empty image ${src}`);
      im.onerror = () => ok(`image does not load: ${src}`);
      im.src = src;
    })));
    failures.push(...images.filter(Boolean));
    const audios = [...document.querySelectorAll('audio')];
    const sounds = await Promise.all(audios.map((a) => new Promise((ok) => {
      if (a.readyState >= 1) return ok(a.duration > 0 ? null : `audio of no length: ${a.src}`);
      const t = setTimeout(() => ok(`audio timed out: ${a.src}`), 15000);
      a.addEventListener('loadedmetadata', () => { clearTimeout(t); ok(a.duration > 0 ? null : `audio of no length: ${a.src}`); });
      a.addEventListener('error', () => { clearTimeout(t); ok(`audio does not load: ${a.src} (${a.error && a.error.code})`); });
      // Players folded away (preload none) are asked to load; the others already are loading.
      if (a.preload === 'none') { a.preload = 'metadata'; a.load(); }
    })));
    failures.push(...sounds.filter(Boolean));
    const table = document.getElementById('notes');
    const rows = table ? table.tBodies[0].rows.length : 0;
    // Sort by score onset twice (ascending, then descending): the first row must change.
    let sorted = false;
    if (table && rows > 1) {
      const th = [...table.tHead.rows[0].cells].find((c) => c.textContent.startsWith('score onset'));
      const col = th.cellIndex;
      th.click();
      const first = parseFloat(table.tBodies[0].rows[0].cells[col].textContent);
      th.click();
      const again = parseFloat(table.tBodies[0].rows[0].cells[col].textContent);
      sorted = first < again;
      th.click();
      if (!sorted) failures.push('the notes table does not sort');
    }
    const spectrogram = document.getElementById('spectrogram');
    const notes = document.querySelectorAll('#spectrogram rect').length;
    if (spectrogram && notes === 0) failures.push('no notes drawn over the spectrogram');
    const path = document.querySelector('#alignment polyline.path');
    const path_points = path ? path.points.numberOfItems : 0;
    if (path && path_points < 2) failures.push('no warping path drawn over the cost matrix');
    if (!spectrogram && !path) failures.push('neither a spectrogram nor an alignment figure');
    return { failures, images: srcs.length, tiles: tiles.length, audio: audios.length, rows, notes, path_points, sorted };
  });
  problems.push(...found.failures);
  // A long recording's page (thousands of table rows) is shot down to 16000 px only.
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.screenshot({ path: shot, fullPage: true, clip: { x: 0, y: 0, width: 1280, height: Math.min(height, 16000) } });
  if (top) await page.screenshot({ path: top, clip: { x: 0, y: 0, width: 1280, height: 1200 } });
  console.log(JSON.stringify({ images: found.images, tiles: found.tiles, audio: found.audio, table_rows: found.rows, note_rects: found.notes, path_points: found.path_points, problems }));
} finally {
  await browser.close();
}
if (problems.length) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
