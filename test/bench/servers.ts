// The two comparison servers of the benchmark, run as child processes by bench.ts:
//   tsx test/bench/servers.ts baseline <port> <file>   a bare NestJS app, same adapter, one route
//   tsx test/bench/servers.ts floor <port> <file>      a plain node:http server
// Both read the same small file per request, with the gateway's own fs.read code, and answer the
// gateway's JSON shape.
import 'reflect-metadata';
import { createServer } from 'node:http';
import { Controller, HttpCode, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { dirname } from 'node:path';
import { readTextFile } from '../../src/kinds/fs/fs-tools';
import { Workspace } from '../../src/kinds/fs/workspace';

const [, , mode, portText, file] = process.argv;
const port = Number(portText);
const workspace = new Workspace(dirname(file));

async function answer(): Promise<object> {
  const result = await readTextFile(workspace, { host: file, display: '/workspace/hello.txt' }, AbortSignal.timeout(10_000));
  return { success: true, status: 'executed', result, audit_id: 'audit_baseline', request_id: 'req' };
}

@Controller()
class BaselineController {
  @Post('api/tools/call')
  @HttpCode(200)
  call(): Promise<object> {
    return answer();
  }
}

@Module({ controllers: [BaselineController] })
class BaselineModule {}

async function main(): Promise<void> {
  if (mode === 'baseline') {
    const app = await NestFactory.create(BaselineModule, { logger: false });
    await app.listen(port, '127.0.0.1');
  } else {
    createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        void answer().then((body) => res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body)));
      });
    }).listen(port, '127.0.0.1');
  }
  process.stdout.write('ready\n');
}

void main();
