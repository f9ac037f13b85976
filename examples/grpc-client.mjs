#!/usr/bin/env node
// A gRPC client app on @meshlet/grpc, as a user writes one: register the xds:/// resolver
// with the app's @grpc/grpc-js, then make clients as usual. The bootstrap comes from
// GRPC_XDS_BOOTSTRAP (or GRPC_XDS_BOOTSTRAP_CONFIG), as for @grpc/grpc-js-xds.
// The demo runs it in a process of its own (grpc-js-xds owns `xds` in the demo's process).
//   GRPC_XDS_BOOTSTRAP=bootstrap.json node examples/grpc-client.mjs [target]
import * as grpc from '@grpc/grpc-js';
import { closeDefaultMesh } from '@meshlet/core';
import { register } from '@meshlet/grpc';

register();

const target = process.argv[2] ?? 'xds:///echo.default.svc.cluster.local:7070';
const id = (b) => b;
const EchoClient = grpc.makeGenericClientConstructor(
  { Echo: { path: '/meshlet.test.EchoService/Echo', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } },
  'EchoService',
);
const client = new EchoClient(target, grpc.credentials.createInsecure());

function echo(text, headers = {}) {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return new Promise((resolve, reject) =>
    client.Echo(Buffer.from(text), md, { deadline: Date.now() + 10_000 }, (err, res) => (err ? reject(err) : resolve(String(res)))),
  );
}

const start = performance.now();
const first = await echo('hello 1');
console.log(`${first}   (first call, config resolved and connected: ${Math.round(performance.now() - start)} ms)`);
for (let i = 2; i <= 4; i++) console.log(await echo(`hello ${i}`));
// The route table sends calls carrying "x-canary: true" to the canary subset.
for (let i = 1; i <= 2; i++) console.log(`${await echo(`canary ${i}`, { 'x-canary': 'true' })}   (metadata x-canary: true)`);
// Round robin over the default subset, tallied.
const counts = {};
for (let i = 0; i < 100; i++) {
  const name = (await echo('count')).split(' ')[0];
  counts[name] = (counts[name] ?? 0) + 1;
}
console.log(`100 more calls: ${Object.entries(counts).sort().map(([k, v]) => `${k} ${v}`).join(', ')}`);
client.close();
// The process-wide mesh (shared with @meshlet/http) holds the ADS stream; closing it lets the process exit.
closeDefaultMesh();
