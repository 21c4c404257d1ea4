/// <reference types="node" preserve="true" />
// The package's public surface. Exports tagged internal (JSDoc) stay exported
// at run time, for the project's own tests and scripts, but are left out of the
// published typings (stripInternal in tsconfig.build.json). The tag covers the
// statement it precedes, comments included: keep the tag's name out of prose here.
export * from './constants';
export {
  AbortError, ErrnoError, InvalidArgTypeError, InvalidArgValueError, MalformedError, OutOfRangeError, RxAbortError,
  TimeoutError, WrongServiceError,
} from './errors';
/** @internal */
export { isErrnoError, writeError } from './errors';
export {
  DecodedRxAddress, decodeControl, decodeSockaddr, encodeControl, encodeSockaddr, isTerminal, MessageKind, ReceivedControl,
  RxAddress, SendControl, SOCKADDR_RXRPC_SIZE,
} from './codec';
/** @internal */
export { formatIp, parseIp } from './codec';
export * from './xdr';
export { Destination, ServiceDestination, ServicePair } from './services';
/** @internal */
export {
  checkAddress, checkDestination, checkDuration, checkPort, checkService, checkServiceDestination, checkServicePair,
} from './services';
export { RawSocket, RawSocketOptions, ReceivedMessage, SendOptions, TransportFamily } from './socket';
export { Call, CallError, Endpoint, EndpointClosedError, EndpointOptions, StartOptions } from './endpoint';
export { CallOptions, CallResult, Client, ClientCall, ClientOptions, KernelTimeouts, ProbeOptions, ProbeResult } from './client';
export { Handler, IncomingCall, maxBacklog, Server, ServerOptions, upgradeWarning } from './server';
export * from './afs';
/** @internal */
export { loadNative, NativeBinding, NativeSocket } from './native';
