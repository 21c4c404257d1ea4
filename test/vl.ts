/**
 * A few VL (volume location) RPCs of OpenAFS, encoded with lib/xdr.ts, for
 * tests against a real vlserver. Opcodes and structures from OpenAFS's
 * src/vlserver/vldbint.xg and vl_opcodes.h.
 */
import { XdrReader, XdrWriter } from '../lib/xdr';

export const VLGETNEWVOLUMEID = 505;
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
/** VL_GetNewVolumeId: reserves `bump` volume IDs (superuser only); the reply is the first one. */
export const getNewVolumeIdRequest = (bump: number) => op(VLGETNEWVOLUMEID).u32(bump).toBuffer();
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
