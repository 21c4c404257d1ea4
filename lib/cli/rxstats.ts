/**
 * RXSTATS, the RPC statistics service AFS servers (OpenAFS's vlserver,
 * ptserver, fileserver, volserver, cache managers) offer as Rx service 409 on
 * their own port. An ordinary Rx service, so AF_RXRPC can call it, unlike the
 * Rx DEBUG packets rxdebug sends (type 8 packets outside any call, which the
 * kernel neither sends nor hands to user space).
 *
 * Written from the protocol (OpenAFS src/rxstat/rxstat.xg, package RXSTATS_,
 * procedures numbered from 0 in order of declaration):
 *   0 RetrieveProcessRPCStats(IN u32 clientVersion; OUT u32 serverVersion, clock_sec, clock_usec, stat_count; u32 stats<>)
 *   1 RetrievePeerRPCStats(IN u32 clientVersion; OUT u32 serverVersion, stat_count, clock_sec, clock_usec; u32 stats<>)
 *   2 QueryProcessRPCStats(OUT i32 on)        3 QueryPeerRPCStats(OUT i32 on)
 *   4/5 Enable{Process,Peer}RPCStats()         6/7 Disable{Process,Peer}RPCStats()
 *   8 QueryRPCStatsVersion(OUT u32 version)   9/10 Clear{Process,Peer}RPCStats(IN u32 clearFlag)
 * The stats array holds 28 words per procedure (rx_function_entry_v1 of rx.h, retrieval version 1):
 * remote peer, port, is-server, interface id (rxgen's statindex), functions in the interface, function
 * index, then invocations, bytes sent and bytes received as 64-bit high/low word pairs, then eight
 * times as seconds/microseconds pairs: queue time sum, sum of squares, min, max; execution time the same.
 * Process-wide entries carry the wildcard peer 0xffffffff.
 */
import { XdrReader, XdrWriter } from '../index';

export const RXSTATS_SERVICE = 409;
export const RXSTATS_OPCODES = {
  RetrieveProcessRPCStats: 0,
  RetrievePeerRPCStats: 1,
  QueryProcessRPCStats: 2,
  QueryPeerRPCStats: 3,
  QueryRPCStatsVersion: 8,
} as const;
/** The retrieval format this command understands (RX_STATS_RETRIEVAL_VERSION). */
export const RX_STATS_RETRIEVAL_VERSION = 1;
const WORDS_PER_ENTRY = 28;
/** Most entries decoded from one reply: a bound before anything is allocated. */
const MAX_WORDS = WORDS_PER_ENTRY * 100000;

export function queryRequest(opcode: number): Buffer {
  return new XdrWriter().u32(opcode).toBuffer();
}

export function retrieveRequest(opcode: number, clientVersion = RX_STATS_RETRIEVAL_VERSION): Buffer {
  return new XdrWriter().u32(opcode).u32(clientVersion).toBuffer();
}

/** The reply of a Query* procedure: one word. */
export function decodeWord(reply: Uint8Array, signed = false): number {
  const r = new XdrReader(reply);
  const v = signed ? r.i32() : r.u32();
  r.end();
  return v;
}

export interface Clock {
  sec: number;
  usec: number;
}

export interface RpcStatEntry {
  /** IPv4 address of the peer (as the server stores it, network order), or undefined for process-wide entries. */
  peer?: string;
  port?: number;
  /** True when the server was the one answering these calls (remote_is_server: the peer is a server). */
  remoteIsServer: boolean;
  interfaceId: number;
  functions: number;
  funcIndex: number;
  invocations: bigint;
  bytesSent: bigint;
  bytesReceived: bigint;
  queueTime: { sum: Clock; sumOfSquares: Clock; min: Clock; max: Clock };
  executionTime: { sum: Clock; sumOfSquares: Clock; min: Clock; max: Clock };
}

export interface RetrievedStats {
  serverVersion: number;
  clock: Clock;
  statCount: number;
  entries: RpcStatEntry[];
  /** Words that did not make a whole entry (none from a well-formed reply). */
  leftoverWords: number;
}

const hyper = (r: XdrReader) => (BigInt(r.u32()) << 32n) | BigInt(r.u32());
const clock = (r: XdrReader): Clock => ({ sec: r.u32(), usec: r.u32() });

function entry(r: XdrReader): RpcStatEntry {
  const peerWord = r.u32();
  const port = r.u32();
  const remoteIsServer = r.u32() !== 0;
  const interfaceId = r.u32();
  const functions = r.u32();
  const funcIndex = r.u32();
  const invocations = hyper(r);
  const bytesSent = hyper(r);
  const bytesReceived = hyper(r);
  const times = () => ({ sum: clock(r), sumOfSquares: clock(r), min: clock(r), max: clock(r) });
  const queueTime = times();
  const executionTime = times();
  const wildcard = peerWord === 0xffffffff;
  return {
    ...(wildcard ? {} : { peer: [24, 16, 8, 0].map((s) => (peerWord >>> s) & 0xff).join('.'), port }),
    remoteIsServer, interfaceId, functions, funcIndex, invocations, bytesSent, bytesReceived, queueTime, executionTime,
  };
}

/** The reply of RetrieveProcessRPCStats (peer = false) or RetrievePeerRPCStats (peer = true). */
export function decodeRetrieve(reply: Uint8Array, peer: boolean): RetrievedStats {
  const r = new XdrReader(reply);
  const serverVersion = r.u32();
  let sec: number;
  let usec: number;
  let statCount: number;
  if (peer) {
    statCount = r.u32();
    sec = r.u32();
    usec = r.u32();
  } else {
    sec = r.u32();
    usec = r.u32();
    statCount = r.u32();
  }
  const words = r.array((x) => x.u32(), MAX_WORDS);
  r.end();
  const entries: RpcStatEntry[] = [];
  const whole = Math.floor(words.length / WORDS_PER_ENTRY);
  const w = new XdrWriter();
  for (const x of words.slice(0, whole * WORDS_PER_ENTRY)) w.u32(x);
  const er = new XdrReader(w.toBuffer());
  for (let i = 0; i < whole; i++) entries.push(entry(er));
  return { serverVersion, clock: { sec, usec }, statCount, entries, leftoverWords: words.length - whole * WORDS_PER_ENTRY };
}

/** Seconds, from a clock. */
export function seconds(c: Clock): number {
  return c.sec + c.usec / 1e6;
}
