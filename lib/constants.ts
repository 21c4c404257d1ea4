/** Numbers from the kernel's include/uapi/linux/rxrpc.h and socket headers. */

export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_RXRPC = 33;
export const SOCK_DGRAM = 2;
export const SOL_SOCKET = 1;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SOL_RXRPC = 272;

/** Flags of sendmsg and recvmsg. */
export const MSG_EOR = 0x80;
export const MSG_TRUNC = 0x20;
export const MSG_CTRUNC = 0x08;
export const MSG_MORE = 0x8000;
/** sendmsg: answer a challenge (RXRPC_RESPOND); every kernel tested refuses it with errno 95 (EOPNOTSUPP; ENOTSUP to Node). */
export const MSG_OOB = 0x01;

/** Socket options at level SOL_RXRPC. */
export const RXRPC_SECURITY_KEY = 1;
export const RXRPC_SECURITY_KEYRING = 2;
export const RXRPC_EXCLUSIVE_CONNECTION = 3;
export const RXRPC_MIN_SECURITY_LEVEL = 4;
export const RXRPC_UPGRADEABLE_SERVICE = 5;
export const RXRPC_SUPPORTED_CMSG = 6;
/** Deliver RxGK challenges to the client socket instead of answering them in the kernel (about 6.16 on). */
export const RXRPC_MANAGE_RESPONSE = 7;

/** Control message types at level SOL_RXRPC. */
export const RXRPC_USER_CALL_ID = 1;
export const RXRPC_ABORT = 2;
export const RXRPC_ACK = 3;
export const RXRPC_NET_ERROR = 5;
export const RXRPC_BUSY = 6;
export const RXRPC_LOCAL_ERROR = 7;
export const RXRPC_NEW_CALL = 8;
export const RXRPC_EXCLUSIVE_CALL = 10;
export const RXRPC_UPGRADE_SERVICE = 11;
export const RXRPC_TX_LENGTH = 12;
export const RXRPC_SET_CALL_TIMEOUT = 13;
export const RXRPC_CHARGE_ACCEPT = 14;
/** Out-of-band messages (challenges), about 6.16 on. */
export const RXRPC_OOB_ID = 15;
export const RXRPC_CHALLENGED = 16;
export const RXRPC_RESPOND = 17;
export const RXRPC_RESPONDED = 18;
export const RXRPC_RESP_RXGK_APPDATA = 19;

/** Security levels for RXRPC_MIN_SECURITY_LEVEL. */
export const RXRPC_SECURITY_PLAIN = 0;
export const RXRPC_SECURITY_AUTH = 1;
export const RXRPC_SECURITY_ENCRYPT = 2;

/** Rx abort codes: Rx itself, rxgen (un)marshalling, and rxkad security. */
export const RX_CALL_DEAD = -1;
export const RX_INVALID_OPERATION = -2;
export const RX_CALL_TIMEOUT = -3;
export const RX_EOF = -4;
export const RX_PROTOCOL_ERROR = -5;
export const RX_USER_ABORT = -6;
export const RX_ADDRINUSE = -7;
export const RX_DEBUGI_BADTYPE = -8;
export const RXGEN_CC_MARSHAL = -450;
export const RXGEN_CC_UNMARSHAL = -451;
export const RXGEN_SS_MARSHAL = -452;
export const RXGEN_SS_UNMARSHAL = -453;
export const RXGEN_DECODE = -454;
export const RXGEN_OPCODE = -455;
export const RXGEN_SS_XDRFREE = -456;
export const RXGEN_CC_XDRFREE = -457;

const ABORT_NAMES: ReadonlyMap<number, string> = new Map([
  [RX_CALL_DEAD, 'RX_CALL_DEAD'],
  [RX_INVALID_OPERATION, 'RX_INVALID_OPERATION'],
  [RX_CALL_TIMEOUT, 'RX_CALL_TIMEOUT'],
  [RX_EOF, 'RX_EOF'],
  [RX_PROTOCOL_ERROR, 'RX_PROTOCOL_ERROR'],
  [RX_USER_ABORT, 'RX_USER_ABORT'],
  [RX_ADDRINUSE, 'RX_ADDRINUSE'],
  [RX_DEBUGI_BADTYPE, 'RX_DEBUGI_BADTYPE'],
  [RXGEN_CC_MARSHAL, 'RXGEN_CC_MARSHAL'],
  [RXGEN_CC_UNMARSHAL, 'RXGEN_CC_UNMARSHAL'],
  [RXGEN_SS_MARSHAL, 'RXGEN_SS_MARSHAL'],
  [RXGEN_SS_UNMARSHAL, 'RXGEN_SS_UNMARSHAL'],
  [RXGEN_DECODE, 'RXGEN_DECODE'],
  [RXGEN_OPCODE, 'RXGEN_OPCODE'],
  [RXGEN_SS_XDRFREE, 'RXGEN_SS_XDRFREE'],
  [RXGEN_CC_XDRFREE, 'RXGEN_CC_XDRFREE'],
  ...[
    'RXKADINCONSISTENCY', 'RXKADPACKETSHORT', 'RXKADLEVELFAIL', 'RXKADTICKETLEN',
    'RXKADOUTOFSEQUENCE', 'RXKADNOAUTH', 'RXKADBADKEY', 'RXKADBADTICKET', 'RXKADUNKNOWNKEY',
    'RXKADEXPIRED', 'RXKADSEALEDINCON', 'RXKADDATALEN', 'RXKADILLEGALLEVEL',
  ].map((name, i): [number, string] => [19270400 + i, name]),
  // RxGK's codes as YFS (and Linux) use them.
  ...[
    'RXGK_INCONSISTENCY', 'RXGK_PACKETSHORT', 'RXGK_BADCHALLENGE', 'RXGK_SEALEDINCON', 'RXGK_NOTAUTH', 'RXGK_EXPIRED',
    'RXGK_BADLEVEL', 'RXGK_BADKEYNO', 'RXGK_NOTRXGK', 'RXGK_UNSUPPORTED', 'RXGK_GSSERROR',
  ].map((name, i): [number, string] => [1233242880 + i, name]),
  // The VL error table of OpenAFS (src/vlserver/vl_errors.et), base 363520.
  ...[
    'VL_IDEXIST', 'VL_IO', 'VL_NAMEEXIST', 'VL_CREATEFAIL', 'VL_NOENT', 'VL_EMPTY', 'VL_ENTDELETED', 'VL_BADNAME',
    'VL_BADINDEX', 'VL_BADVOLTYPE', 'VL_BADSERVER', 'VL_BADPARTITION', 'VL_REPSFULL', 'VL_NOREPSERVER',
    'VL_DUPREPSERVER', 'VL_RWNOTFOUND', 'VL_BADREFCOUNT', 'VL_SIZEEXCEEDED', 'VL_BADENTRY', 'VL_BADVOLIDBUMP',
    'VL_IDALREADYHASHED', 'VL_ENTRYLOCKED', 'VL_BADVOLOPER', 'VL_BADRELLOCKTYPE', 'VL_RERELEASE',
    'VL_BADSERVERFLAG', 'VL_PERM', 'VL_NOMEM', 'VL_BADVERSION', 'VL_INDEXERANGE', 'VL_MULTIPADDR', 'VL_BADMASK',
  ].map((name, i): [number, string] => [363520 + i, name]),
]);

/** The symbolic name of an abort code (RX_*, RXGEN_*, RXKAD*, VL_*), or undefined. */
export function abortCodeName(code: number): string | undefined {
  return ABORT_NAMES.get(code);
}

/** Abort codes travel as u32; they are shown signed, as rxgen does. */
export function toSignedCode(code: number): number {
  return code | 0;
}
