/**
 * What a stranger sees: every request that does not hold the token (and the required header) is
 * answered by the cover, exactly as the cover answers it — a prober learns nothing that tells an
 * edge from the site it stands in front of (Tor's WebTunnel and Hysteria 2 hide the same way).
 *
 * With `--cover URL` the request is reverse-proxied to that site, method, path, headers and body
 * as sent (hop-by-hop headers aside); otherwise a small built-in static site answers.
 */
import http from 'node:http';
import https from 'node:https';

/** Headers that belong to one connection, never forwarded either way (RFC 9110 §7.6.1). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

function forwardable(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

/** A reverse proxy to `site`: the answer streams back as the site gave it. */
export function proxyCover(site: URL): http.RequestListener {
  const client = site.protocol === 'https:' ? https : http;
  const agent = new client.Agent({ keepAlive: true, maxSockets: 64 });
  const base = site.pathname.replace(/\/$/, '');
  return (req, res) => {
    const headers = forwardable(req.headers);
    headers.host = site.host;
    const upstream = client.request(
      { protocol: site.protocol, hostname: site.hostname, port: site.port || undefined, method: req.method, path: base + (req.url ?? '/'), headers, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.statusMessage, forwardable(answer.headers));
        answer.pipe(res);
        answer.once('error', () => res.destroy());
      },
    );
    // The cover is unreachable: drop the connection, as a site whose backend is down would.
    upstream.once('error', () => res.destroy());
    req.pipe(upstream);
  };
}

const PAGES: Record<string, { type: string; body: string }> = {
  '/': {
    type: 'text/html; charset=utf-8',
    body: `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Field notes</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>Field notes</h1>
<p>Notes on birds seen along the river, kept since the spring.</p>
<ul><li><a href="/notes/herons.html">Herons at dawn</a></li><li><a href="/notes/swifts.html">The swifts are back</a></li></ul>
</body></html>
`,
  },
  '/notes/herons.html': {
    type: 'text/html; charset=utf-8',
    body: `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Herons at dawn</title></head>
<body><h1>Herons at dawn</h1><p>Three grey herons on the gravel bank before sunrise, one with a fish.</p><p><a href="/">Back</a></p></body></html>
`,
  },
  '/notes/swifts.html': {
    type: 'text/html; charset=utf-8',
    body: `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>The swifts are back</title></head>
<body><h1>The swifts are back</h1><p>First screaming party over the old mill today.</p><p><a href="/">Back</a></p></body></html>
`,
  },
  '/robots.txt': { type: 'text/plain; charset=utf-8', body: 'User-agent: *\nAllow: /\n' },
};

const NOT_FOUND = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>
<body><h1>Not found</h1><p>There is no page here.</p><p><a href="/">Field notes</a></p></body></html>
`;

const LAST_MODIFIED = 'Mon, 02 Jun 2025 07:14:00 GMT';

/** The built-in cover: a few static pages, answered the same to every method but with no body for HEAD. */
export function staticCover(): http.RequestListener {
  return (req, res) => {
    // Drain any body: a static site reads and ignores it.
    req.resume();
    const path = (req.url ?? '/').split('?')[0]!;
    const page = PAGES[path];
    const body = Buffer.from(page ? page.body : NOT_FOUND);
    res.writeHead(page ? 200 : 404, {
      'content-type': page ? page.type : 'text/html; charset=utf-8',
      'content-length': String(body.length),
      'last-modified': LAST_MODIFIED,
      'cache-control': 'max-age=300',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
