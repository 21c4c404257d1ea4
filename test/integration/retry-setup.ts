// Set up for each integration test file (jest.integration.config.js). In the
// kernel VMs (scripts/test.js, test-sanitize.js and test-pairs.js set
// RXRPC_RETRY_KERNEL_TIMEOUTS), a failed test is run once more. A server
// kernel aborts a call with RX_CALL_TIMEOUT when the next packet of its
// request is more than 1 s late (every kernel here: next_req_timo), and 6.1
// also when user space has not read the whole request 1 s after its last
// packet (calls.test.ts measures both); an emulated guest, the sanitized one
// most of all, now and then stalls that long. The runner accepts a pass on
// the second run only if the first failed with that expiry itself
// (RX_CALL_TIMEOUT, or RX_CALL_DEAD on a connection that heard newer packets),
// and names every test it ran twice with its first failure (scripts/jest-report.js).
if (process.env.RXRPC_RETRY_KERNEL_TIMEOUTS === '1') jest.retryTimes(1, { logErrorsBeforeRetry: true });
