/**
 * The live view: a page on 127.0.0.1 (plain node:http, server-sent events, no framework) and
 * a terminal table. Each participant is a card with its epoch, its agent's state and what it
 * sent; inside, a tile per peer it sees (the newest decoded frame, and frames received,
 * decoded, failed). A peer that stops decrypting leaves the card: that is what expelling
 * someone looks like from their side.
 *
 *   GET /          the page
 *   GET /state     the conference state as JSON
 *   GET /events    SSE: `state` four times a second
 *   POST /expel?name=<participant>
 */
import http from 'node:http';
import type { ParticipantStatus } from './status.js';

export interface ParticipantView {
  readonly name: string;
  readonly tool: 'gst' | 'ffmpeg';
  /** The keyd its agent joined. */
  readonly at: string;
  status?: ParticipantStatus;
  expelledAt?: number;
  /** When each peer left this participant's view (ms since the Unix epoch). */
  vanished: Record<string, number>;
}

export interface ConferenceState {
  readonly group: string;
  readonly periodMs: number;
  readonly startedAt: number;
  readonly participants: ParticipantView[];
  readonly log: { t: number; text: string }[];
}

export interface ViewOptions {
  readonly state: ConferenceState;
  readonly expel: (name: string) => Promise<void>;
}

/** State without thumbnails older than the last report (the page needs only the newest). */
function snapshot(s: ConferenceState): ConferenceState {
  return { ...s, log: s.log.slice(-30) };
}

export class ViewServer {
  private readonly server: http.Server;
  private readonly streams = new Set<http.ServerResponse>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ViewOptions) {
    this.server = http.createServer((req, res) => this.handle(req, res));
  }

  async start(port: number): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.timer = setInterval(() => {
      const text = `event: state\ndata: ${JSON.stringify(snapshot(this.opts.state))}\n\n`;
      for (const r of this.streams) r.write(text);
    }, 250);
    const a = this.server.address() as { port: number };
    return `http://127.0.0.1:${a.port}/`;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const r of this.streams) r.end();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://view');
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method === 'GET' && url.pathname === '/') return send(200, 'text/html; charset=utf-8', PAGE);
    if (req.method === 'GET' && url.pathname === '/state') return send(200, 'application/json', JSON.stringify(snapshot(this.opts.state)));
    if (req.method === 'GET' && url.pathname === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(': vic-like\n\n');
      this.streams.add(res);
      res.on('close', () => this.streams.delete(res));
      return;
    }
    if (req.method === 'POST' && url.pathname === '/expel') {
      const name = url.searchParams.get('name') ?? '';
      if (!this.opts.state.participants.some((p) => p.name === name)) return send(404, 'application/json', JSON.stringify({ error: `no participant ${name}` }));
      this.opts.expel(name).then(
        () => send(200, 'application/json', JSON.stringify({ expelled: name })),
        (err: Error) => send(500, 'application/json', JSON.stringify({ error: err.message })),
      );
      return;
    }
    send(404, 'application/json', JSON.stringify({ error: 'not found' }));
  }
}

/** The terminal table, one line per participant. */
export function renderTerminal(s: ConferenceState, url: string): string {
  const lines = [`vic-like · group ${s.group} · KGRP2 every ${s.periodMs / 1000} s · view ${url} · Ctrl-C stops`, ''];
  for (const p of s.participants) {
    const st = p.status;
    const head = `${p.name.padEnd(8)} ${`(${p.tool})`.padEnd(9)} epoch ${String(st?.epoch ?? '-').padEnd(5)} agent ${(st?.agent ?? '…').padEnd(8)} sent ${String(st?.sent.frames ?? 0).padStart(5)}`;
    const sees = (st?.peers ?? []).filter((x) => x.visible).map((x) => `${x.name} ${x.received}/${x.decoded}/${x.failed}`);
    const gone = (st?.peers ?? []).filter((x) => !x.visible).map((x) => `${x.name} ✗ failed ${x.failed}`);
    lines.push(`${head}${p.expelledAt ? ' EXPELLED' : ''}  sees: ${sees.join('  ') || 'nobody'}${gone.length ? `  | lost: ${gone.join('  ')}` : ''}`);
  }
  lines.push('', 'frames received/decoded/failed per peer', '', ...s.log.slice(-8).map((l) => `${new Date(l.t).toISOString().slice(11, 23)}  ${l.text}`));
  return `\x1b[H\x1b[2J${lines.join('\n')}\n`;
}

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>vic-like · Iolus</title>
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;background:#111;color:#ddd}
h1{font-size:18px;margin:0 0 .3em} .sub{color:#999;margin-bottom:1em}
.grid{display:flex;flex-wrap:wrap;gap:1em}
.card{background:#1c1c1c;border:1px solid #333;border-radius:8px;padding:.8em;min-width:300px}
.card.expelled{border-color:#a33}
.card h2{font-size:15px;margin:0 0 .4em;display:flex;justify-content:space-between;gap:1em}
.meta{color:#aaa;font-size:12px;margin-bottom:.5em}
.tiles{display:flex;gap:.6em;min-height:120px}
.tile{text-align:center;font-size:12px} .tile canvas{width:128px;height:96px;background:#000;image-rendering:pixelated;border-radius:4px}
.none{color:#a66;font-style:italic;align-self:center}
button{background:#522;color:#fdd;border:1px solid #844;border-radius:4px;cursor:pointer}
.log{margin-top:1.2em;font:12px monospace;color:#999;white-space:pre}
</style></head><body>
<h1>vic-like conference over Iolus</h1>
<div class="sub" id="sub"></div>
<div class="grid" id="grid"></div>
<div class="log" id="log"></div>
<script>
const grid = document.getElementById('grid');
function tile(p) {
  const d = document.createElement('div'); d.className = 'tile';
  const c = document.createElement('canvas'); c.width = 64; c.height = 48; d.appendChild(c);
  if (p.thumb) {
    const raw = atob(p.thumb); const img = c.getContext('2d').createImageData(64, 48);
    for (let i = 0; i < 64 * 48; i++) { const v = raw.charCodeAt(i); img.data.set([v, v, v, 255], i * 4); }
    c.getContext('2d').putImageData(img, 0, 0);
    tile.last[p.name] = img;
  } else if (tile.last[p.name]) c.getContext('2d').putImageData(tile.last[p.name], 0, 0);
  const t = document.createElement('div');
  t.textContent = p.name + ' · epoch ' + (p.epoch ?? '-') + ' · ' + p.received + ' rx / ' + p.decoded + ' dec / ' + p.failed + ' fail';
  d.appendChild(t); return d;
}
tile.last = {};
function render(s) {
  document.getElementById('sub').textContent = 'group ' + s.group + ' · KGRP2 rolls every ' + s.periodMs / 1000 + ' s · frames received / decoded / failed per peer';
  grid.replaceChildren(...s.participants.map((p) => {
    const st = p.status; const card = document.createElement('div');
    card.className = 'card' + (p.expelledAt ? ' expelled' : '');
    const h = document.createElement('h2'); h.textContent = p.name + ' (' + p.tool + ', at ' + p.at + ')';
    const b = document.createElement('button'); b.textContent = 'expel'; b.disabled = !!p.expelledAt;
    b.onclick = () => fetch('/expel?name=' + encodeURIComponent(p.name), { method: 'POST' });
    h.appendChild(b); card.appendChild(h);
    const m = document.createElement('div'); m.className = 'meta';
    m.textContent = st ? 'sending under epoch ' + (st.epoch ?? 'none') + ' · agent ' + st.agent + ' · sent ' + st.sent.frames + ' frames · getkey() ' + st.getkey + (p.expelledAt ? ' · EXPELLED' : '') : 'starting…';
    card.appendChild(m);
    const tiles = document.createElement('div'); tiles.className = 'tiles';
    const seen = st ? st.peers.filter((x) => x.visible) : [];
    if (seen.length) tiles.replaceChildren(...seen.map(tile));
    else { const n = document.createElement('div'); n.className = 'none'; n.textContent = 'sees nobody'; tiles.appendChild(n); }
    card.appendChild(tiles); return card;
  }));
  document.getElementById('log').textContent = s.log.map((l) => new Date(l.t).toISOString().slice(11, 23) + '  ' + l.text).join('\\n');
}
const es = new EventSource('/events');
es.addEventListener('state', (e) => render(JSON.parse(e.data)));
</script></body></html>
`;
