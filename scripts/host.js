'use strict';
// Whether the running kernel offers AF_RXRPC (npm run demo and npm run bench
// run directly when it does, and in the kernel VM when it does not).
const path = require('node:path');

function hostHasRxrpc(root) {
  const { RawSocket } = require(path.join(root, 'build', 'lib', 'socket.js'));
  try {
    new RawSocket().close();
    return true;
  } catch (err) {
    if (err.code === 'EAFNOSUPPORT') return false;
    throw err;
  }
}

module.exports = { hostHasRxrpc };
