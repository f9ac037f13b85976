// A real grpc-js backend with one unary method that answers with its own name, and a
// client for it. Messages are raw bytes, so no .proto is needed.
import * as grpc from '@grpc/grpc-js';

const identity = (b: Buffer): Buffer => b;

export const ECHO_SERVICE: grpc.ServiceDefinition = {
  Echo: {
    path: '/meshlet.test.EchoService/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

export interface EchoBackend {
  name: string;
  port: number;
  calls: number;
  close(): Promise<void>;
}

export async function startEchoBackend(name: string): Promise<EchoBackend> {
  const server = new grpc.Server();
  const backend: EchoBackend = { name, port: 0, calls: 0, close: () => Promise.resolve() };
  server.addService(ECHO_SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      backend.calls++;
      callback(null, Buffer.from(`${name}:${call.request.toString()}`));
    },
  });
  backend.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  backend.close = () => new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  return backend;
}

const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'EchoService');

export function echoClient(target: string): grpc.Client & { echo(msg: string, deadlineMs?: number): Promise<string> } {
  const client = new EchoClient(target, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Echo: (req: Buffer, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void) => void;
    echo(msg: string, deadlineMs?: number): Promise<string>;
  };
  client.echo = (msg, deadlineMs = 10_000) =>
    new Promise((resolve, reject) =>
      client.Echo(Buffer.from(msg), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res!.toString()))),
    );
  return client;
}
