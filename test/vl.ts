/**
 * A few VL (volume location) RPCs of OpenAFS, encoded with lib/xdr.ts, for
 * tests against a real vlserver. Opcodes and structures from OpenAFS's
 * src/vlserver/vldbint.xg and vl_opcodes.h.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Client } from '../lib/client';
import { XdrReader, XdrWriter } from '../lib/xdr';

export const VLGETSTATS = 513;
export const VLPROBE = 514;
export const VLGETADDRS = 515;
export const VLGETENTRYBYNAMEN = 519;
export const VL_MAXNAMELEN = 65;
const MAX_NUMBER_OPCODES = 50;

export interface VlStats {
  startTime: number;
  requests: number[];
  aborts: number[];
  vldbversion: number;
  headersize: number;
  freePtr: number;
  eofPtr: number;
  allocs: number;
  frees: number;
  maxVolumeId: number;
  totalEntries: number[];
}

const op = (opcode: number) => new XdrWriter().u32(opcode);
const ints = (r: XdrReader, n: number) => Array.from({ length: n }, () => r.i32());

export const probeRequest = () => op(VLPROBE).toBuffer();
export const getStatsRequest = () => op(VLGETSTATS).toBuffer();
export const getAddrsRequest = () => op(VLGETADDRS).i32(0).i32(0).toBuffer();
export const getEntryByNameNRequest = (name: string) => op(VLGETENTRYBYNAMEN).string(name, VL_MAXNAMELEN).toBuffer();

export function decodeStats(reply: Buffer): VlStats {
  const r = new XdrReader(reply);
  const startTime = r.u32();
  const requests = ints(r, MAX_NUMBER_OPCODES);
  const aborts = ints(r, MAX_NUMBER_OPCODES);
  ints(r, 5); // reserved
  const [vldbversion, headersize, freePtr, eofPtr, allocs, frees, maxVolumeId] = ints(r, 7);
  const totalEntries = ints(r, 3);
  r.end();
  return { startTime, requests, aborts, vldbversion, headersize, freePtr, eofPtr, allocs, frees, maxVolumeId, totalEntries };
}

export function decodeAddrs(reply: Buffer): { callBack: number[]; nentries: number; addrs: number[] } {
  const r = new XdrReader(reply);
  const callBack = [r.u32(), r.u32(), r.u32(), r.u32()];
  const nentries = r.i32();
  const addrs = r.array((x) => x.u32(), 10000);
  r.end();
  return { callBack, nentries, addrs };
}

/** Where the VM's OpenAFS VL server listens: ubik ignores 127.x addresses, so it gets one of its own on lo. */
export const VL_ADDRESS = '198.18.0.1';
const UNOQUORUM = 5376;

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

/**
 * Gives the guest VL_ADDRESS on lo, a matching hostname and /etc/hosts, a
 * writable OpenAFS local directory, and a cell configuration in `dir`/server
 * (ThisCell, CellServDB naming VL_ADDRESS), which vos can use as its -config
 * directory too. Safe to call again.
 */
export function setUpCell(dir: string): void {
  mkdirSync(`${dir}/server`, { recursive: true });
  mkdirSync(`${dir}/db`, { recursive: true });
  writeFileSync(`${dir}/server/ThisCell`, 'test.rxrpc\n');
  writeFileSync(`${dir}/server/CellServDB`, `>test.rxrpc #test cell\n${VL_ADDRESS} #vl.test\n`);
  if (!sh('ip', ['addr', 'show', 'dev', 'lo']).includes(`inet ${VL_ADDRESS}/32`)) {
    sh('ip', ['addr', 'add', `${VL_ADDRESS}/32`, 'dev', 'lo']);
  }
  sh('hostname', ['vl.test']);
  const mounts = sh('cat', ['/proc/self/mounts']);
  if (!mounts.includes(' /etc/hosts ')) {
    writeFileSync(`${dir}/hosts`, `127.0.0.1 localhost\n${VL_ADDRESS} vl.test\n`);
    sh('mount', ['--bind', `${dir}/hosts`, '/etc/hosts']);
  }
  // -noauth takes effect through a NoAuth file the server creates in its local
  // directory, which is read-only in the VM: give it a writable one.
  if (!mounts.includes(' /var/lib/openafs/local ')) {
    mkdirSync(`${dir}/local`, { recursive: true });
    sh('mount', ['--bind', `${dir}/local`, '/var/lib/openafs/local']);
  }
}

export interface Vlserver {
  process: ChildProcess;
  /** Seconds from start to a usable database. */
  quorumSeconds: number;
  /** Stops the server and waits until it has exited (its port is free again). */
  stop(): Promise<void>;
}

/**
 * Starts Debian's OpenAFS vlserver (-noauth) on VL_ADDRESS:7003 with a fresh
 * database in `dir`, and waits until ubik has elected it and it answers.
 * `extraArgs` go on its command line (-enable_process_stats for RXSTATS).
 */
export async function startVlserver(dir: string, extraArgs: readonly string[] = []): Promise<Vlserver> {
  setUpCell(dir);
  const started = Date.now();
  const vlserver = spawn('/usr/lib/openafs/vlserver', [
    '-noauth', '-config', `${dir}/server`, '-database', `${dir}/db/vldb`, '-logfile', `${dir}/VLLog`, ...extraArgs,
  ], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => vlserver.once('exit', () => resolve()));
  const stop = async () => {
    if (vlserver.exitCode === null && vlserver.signalCode === null) vlserver.kill();
    await exited;
  };
  try {
    // Wait for ubik to elect itself (a few seconds under emulation).
    for (;;) {
      let debug = '';
      try {
        debug = sh('udebug', [VL_ADDRESS, '7003']);
      } catch {
        // not answering yet
      }
      if (debug.includes('I am sync site')) break;
      if (vlserver.exitCode !== null || Date.now() - started > 90000) {
        throw new Error(`vlserver did not reach quorum: exit ${vlserver.exitCode}\n${debug}`);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    // The first transactions after the election can still be refused with
    // ubik's UNOQUORUM (5376) while the new database is set up: wait them out.
    const client = new Client();
    try {
      for (;;) {
        try {
          await client.call({ address: VL_ADDRESS, port: 7003, service: 52 }, getStatsRequest(), { timeout: 20000 });
          break;
        } catch (err) {
          if ((err as { abortCode?: number }).abortCode !== UNOQUORUM || Date.now() - started > 90000) throw err;
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    } finally {
      client.close();
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { process: vlserver, quorumSeconds: (Date.now() - started) / 1000, stop };
}
