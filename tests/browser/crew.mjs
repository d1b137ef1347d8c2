// A crew's websocket session run from the test process, as a crew's app would hold it (Node 20 has no
// WebSocket of its own): an HTTP upgrade with the bearer token, then RFC 6455 frames, masked from the
// client, with pings answered so the server's heartbeat keeps the session open.
import { request } from 'node:http';
import { createHash, randomBytes } from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

// One client frame: final, masked, with `opcode` (1 text, 8 close, 10 pong).
function encode(opcode, payload) {
  const n = payload.length;
  const head = n < 126 ? [0x80 | opcode, 0x80 | n]
    : n < 65536 ? [0x80 | opcode, 0x80 | 126, n >> 8, n & 0xff]
      : null;
  if (!head) throw new Error('frame too large for this client');
  const mask = randomBytes(4);
  const body = Buffer.alloc(n);
  for (let i = 0; i < n; i++) body[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([Buffer.from(head), mask, body]);
}

// Splits complete server frames (never masked) off the front of `buf`: [[opcode, payload], …] and the rest.
function decode(buf) {
  const frames = [];
  for (;;) {
    if (buf.length < 2) break;
    let n = buf[1] & 0x7f;
    let at = 2;
    if (n === 126) {
      if (buf.length < 4) break;
      n = buf.readUInt16BE(2);
      at = 4;
    } else if (n === 127) {
      if (buf.length < 10) break;
      n = Number(buf.readBigUInt64BE(2));
      at = 10;
    }
    if (buf.length < at + n) break;
    frames.push([buf[0] & 0x0f, buf.subarray(at, at + n)]);
    buf = buf.subarray(at + n);
  }
  return [frames, buf];
}

// Opens `/ws` on `base` as the holder of `token`. `command(frame)` resolves with the ack of the frame
// (sent with a fresh `ref`) and rejects with its error; `onOffer(event)` sees every offer.
export function openCrewSession(base, token) {
  return new Promise((resolve, reject) => {
    const key = randomBytes(16).toString('base64');
    const req = request(base + '/ws', {
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': key,
        Authorization: 'Bearer ' + token,
      },
    });
    req.on('response', (res) => reject(new Error('/ws answered ' + res.statusCode + ' instead of upgrading')));
    req.on('error', reject);
    req.on('upgrade', (res, socket, head) => {
      const expected = createHash('sha1').update(key + GUID).digest('base64');
      if (res.headers['sec-websocket-accept'] !== expected) {
        socket.destroy();
        reject(new Error('bad Sec-WebSocket-Accept'));
        return;
      }
      const pending = new Map();
      let next = 1;
      let rest = head;
      const session = {
        onOffer: null,
        command(frame) {
          return new Promise((ok, fail) => {
            const ref = 'c' + next++;
            pending.set(ref, { ok, fail });
            socket.write(encode(1, Buffer.from(JSON.stringify({ ...frame, ref }))));
          });
        },
        close() {
          if (socket.destroyed) return;
          socket.end(encode(8, Buffer.from([0x03, 0xe8])));
        },
      };
      const closed = (why) => {
        for (const p of pending.values()) p.fail(new Error(why));
        pending.clear();
      };
      socket.on('data', (chunk) => {
        const [frames, left] = decode(Buffer.concat([rest, chunk]));
        rest = left;
        for (const [opcode, payload] of frames) {
          if (opcode === 9) socket.write(encode(10, payload));
          else if (opcode === 8) { closed('the server closed the session'); socket.end(); }
          else if (opcode === 1) {
            const f = JSON.parse(payload.toString('utf8'));
            const waiting = f.ref !== undefined && pending.get(f.ref);
            if (waiting) {
              pending.delete(f.ref);
              if (f.type === 'ack') waiting.ok(f); else waiting.fail(new Error(JSON.stringify(f)));
            } else if (f.type === 'offer' && session.onOffer) {
              session.onOffer(f.event);
            }
          }
        }
      });
      socket.on('close', () => closed('the session ended'));
      socket.on('error', () => closed('the session failed'));
      resolve(session);
    });
    req.end();
  });
}
