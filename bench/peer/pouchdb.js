// The peer of fieldsync-bench: the same workload through PouchDB replicating to
// express-pouchdb, so our figures can be read as ratios measured in the same run.
//
//   node pouchdb.js server DIR            serve DIR over HTTP on 127.0.0.1; prints {"port": P}
//   node pouchdb.js client DIR URL DOCS   run the client phases; prints one JSON line
//
// DOCS is a JSON Lines file of answer objects (the harness writes the same answers it
// collects into fieldsync). Every database is LevelDB on disk, PouchDB's Node.js default.
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');

const PouchDB = require('pouchdb');

const BATCH = 1000;

async function serve(dir) {
  const express = require('express');
  fs.mkdirSync(dir, { recursive: true });
  const Local = PouchDB.defaults({ prefix: dir + path.sep });
  const app = express();
  app.use('/', require('express-pouchdb')(Local, {
    mode: 'minimumForPouchDB',
    logPath: path.join(dir, 'log.txt'),
    configPath: path.join(dir, 'config.json'),
  }));
  const server = app.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
  });
}

async function readDocs(file) {
  const docs = [];
  const lines = readline.createInterface({ input: fs.createReadStream(file) });
  for await (const line of lines) {
    if (line.length) docs.push(JSON.parse(line));
  }
  return docs;
}

function seconds(start) {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function replicate(from, to) {
  const start = process.hrtime.bigint();
  const info = await PouchDB.replicate(from, to, { batch_size: BATCH, batches_limit: 4 });
  return { seconds: seconds(start), written: info.docs_written, read: info.docs_read };
}

async function client(dir, url, docsFile) {
  fs.mkdirSync(dir, { recursive: true });
  const answers = await readDocs(docsFile);
  const device = new PouchDB(path.join(dir, 'device'));
  const remote = new PouchDB(url + '/responses');
  await remote.info(); // creates the database

  // Local bulk write: every response one document, BATCH per bulkDocs call.
  let start = process.hrtime.bigint();
  for (let i = 0; i < answers.length; i += BATCH) {
    const docs = answers.slice(i, i + BATCH).map((a, j) => ({
      _id: 'r' + String(i + j).padStart(9, '0'),
      survey: 'household',
      status: 'submitted',
      answers: a,
    }));
    const res = await device.bulkDocs(docs);
    if (res.some((r) => r.error)) throw new Error('a local write failed');
  }
  const local = seconds(start);

  const push = await replicate(device, remote);
  const noop = await replicate(device, remote);
  const fresh = new PouchDB(path.join(dir, 'coordinator'));
  const pull = await replicate(remote, fresh);
  const pulled = (await fresh.info()).doc_count;

  process.stdout.write(JSON.stringify({
    n: answers.length,
    local_write_seconds: local,
    push_seconds: push.seconds,
    pushed: push.written,
    noop_seconds: noop.seconds,
    noop_written: noop.written,
    pull_seconds: pull.seconds,
    pulled,
  }) + '\n');
}

const [mode, ...rest] = process.argv.slice(2);
const run = mode === 'server' ? serve(rest[0]) : client(rest[0], rest[1], rest[2]);
run.catch((e) => {
  process.stderr.write(`pouchdb peer: ${e && e.stack || e}\n`);
  process.exit(1);
});
