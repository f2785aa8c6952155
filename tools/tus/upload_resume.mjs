// tus-js-client against Chat4All's /v1/tus/ endpoint: uploads a file, aborts the upload
// once about half of it was sent, asks the server where it stands (HEAD), then resumes with
// the stored upload URL and finishes. Prints one JSON object per line on stdout:
//   {"event":"aborted","sent":..}  {"event":"offset","offset":..}  {"event":"done","url":..}
// Used by tests/e2e/test_tus_js.py. Inputs (environment): TUS_ENDPOINT (http://host:port/v1/tus/),
// TUS_TOKEN (access token), TUS_CONVERSATION, TUS_FILE (path), TUS_SHA256 (hex, optional),
// TUS_ABORT_FRACTION (default 0.5).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import * as tus from 'tus-js-client';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is required`);
  return v;
};
const endpoint = env('TUS_ENDPOINT');
const token = env('TUS_TOKEN');
const file = env('TUS_FILE');
const fraction = Number(env('TUS_ABORT_FRACTION', '0.5'));
const data = readFileSync(file);
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const headers = { Authorization: `Bearer ${token}` };
const metadata = {
  conversation_id: env('TUS_CONVERSATION'),
  filename: basename(file),
  filetype: 'application/octet-stream',
};
if (process.env.TUS_SHA256) metadata.checksum_sha256 = process.env.TUS_SHA256;

function run(options) {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint,
      headers,
      metadata,
      retryDelays: [0, 500, 1000],
      ...options,
      onError: reject,
      onSuccess: () => resolve({ upload, aborted: false }),
    });
    upload.options.onProgress = (sent, total) => {
      if (options.abortAt !== undefined && sent >= options.abortAt && !upload._chat4allAborted) {
        upload._chat4allAborted = true;
        say({ event: 'aborted', sent, total });
        upload.abort().then(() => resolve({ upload, aborted: true }), reject);
      }
    };
    upload.start();
  });
}

const first = await run({ abortAt: Math.floor(data.length * fraction) });
if (!first.aborted) throw new Error('the upload finished before it could be interrupted');
const url = first.upload.url;
if (!url) throw new Error('no upload URL after the interruption');
// What the server kept (whole chunks only): the resumed upload starts there.
const head = await fetch(url, { method: 'HEAD', headers: { ...headers, 'Tus-Resumable': '1.0.0' } });
say({ event: 'offset', status: head.status, offset: Number(head.headers.get('upload-offset')) });
// Resume with the stored URL: a new Upload object, as a restarted client would make.
const second = await run({ uploadUrl: url });
say({ event: 'done', url: second.upload.url });
