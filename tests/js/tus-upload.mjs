// Uploads a file to a medanchor node with tus-js-client, the reference
// tus client, unchanged: `node tus-upload.mjs ENDPOINT TOKEN FILE NAME TYPE CHUNK`
// (CHUNK in bytes; 0 sends the whole file in one PATCH). Prints the
// upload's URL and the attachment id the node answered, as JSON, on
// success; exits non-zero with the client's error otherwise.
import { readFileSync } from "node:fs";
import { Upload } from "tus-js-client";

const [endpoint, token, file, name, type, chunk] = process.argv.slice(2);
const bytes = readFileSync(file);
let attachment = null;
let progressEvents = 0;

const upload = new Upload(bytes, {
  endpoint,
  headers: { Authorization: `Bearer ${token}` },
  metadata: { filename: name, filetype: type },
  chunkSize: Number(chunk) > 0 ? Number(chunk) : Infinity,
  retryDelays: [0, 200, 500],
  removeFingerprintOnSuccess: true,
  onProgress: () => {
    progressEvents += 1;
  },
  onAfterResponse: (_req, res) => {
    const id = res.getHeader("Medanchor-Attachment-Id");
    if (id) attachment = id;
  },
  onError: (error) => {
    console.error(String(error));
    process.exit(1);
  },
  onSuccess: () => {
    console.log(JSON.stringify({ url: upload.url, attachment, progressEvents }));
  },
});
upload.start();
