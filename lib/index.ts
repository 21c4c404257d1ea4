/// <reference types="node" preserve="true" />
// The package's public surface. Exports tagged internal (JSDoc) stay exported
// at run time, for the project's own tests and scripts, but are left out of the
// published typings (stripInternal in tsconfig.build.json). The tag covers the
// statement it precedes, comments included: keep the tag's name out of prose here.
export * from './constants';
export {
  AbortError, ErrnoError, InvalidArgTypeError, InvalidArgValueError, MalformedError, OutOfRangeError, RxAbortError,
  SizeLimitError, TimeoutError, WrongServiceError,
} from './errors';
/** @internal */
export { checkAbortCode, emitError, isErrnoError, show, writeError } from './errors';
export { errnoName, errnoNumber } from './errno';
export {
  DecodedRxAddress, decodeControl, decodeSockaddr, encodeControl, encodeSockaddr, findCallId, isTerminal, MessageKind,
  ReceivedControl, RxAddress, SendControl, SOCKADDR_RXRPC_SIZE,
} from './codec';
/** @internal */
export { formatIp, parseIp } from './codec';
export * from './xdr';
export { Destination, ServiceDestination, ServicePair } from './services';
/** @internal */
export {
  checkAddress, checkBoolean, checkCount, checkDeadline, checkDestination, checkDuration, checkPort, checkService,
  checkServiceDestination, checkServicePair,
} from './services';
export { BlockingSend, RawSocket, RawSocketOptions, ReceivedMessage, SendOptions, ThreadSend, TransportFamily } from './socket';
export { BULK_MIN, BULK_SENDS, Call, CallError, Endpoint, EndpointClosedError, EndpointOptions, StartOptions } from './endpoint';
export {
  CallOptions, CallResult, Client, ClientCall, ClientOptions, DEFAULT_MAX_REPLY_BYTES, KernelTimeouts, ProbeOptions, ProbeResult,
} from './client';
export {
  DEFAULT_MAX_REQUEST_BYTES, fixedModuleVersion, Handler, IncomingCall, maxBacklog, Server, ServerOptions, upgradeWarning,
} from './server';
/** @internal */
export { ChunkQueue } from './queue';
export * from './afs';
/** @internal */
export { loadNative, NativeBinding, NativeSocket } from './native';
export { generate, generateFile, GenerateOptions, GenerateResult, outputName, RxgenSyntaxError } from './rxgen';
