// Set up for each integration test file (jest.integration.config.js). With the
// sanitized addon on Linux 6.1 (scripts/test-sanitize.js sets
// RXRPC_RETRY_KERNEL_TIMEOUTS), a failed test is run once more: 6.1's server
// kernel aborts a call with RX_CALL_TIMEOUT when its request's next packet is
// more than 1 s late, and also when user space has not read the whole request
// 1 s after its last packet (calls.test.ts measures both), which an
// ASan-instrumented Node under emulation now and then is. The runner accepts
// a pass on the second run only if the first failed with RX_CALL_TIMEOUT or
// RX_CALL_DEAD (the same expiry, on a connection that heard newer packets),
// and names every test it ran twice.
if (process.env.RXRPC_RETRY_KERNEL_TIMEOUTS === '1') jest.retryTimes(1, { logErrorsBeforeRetry: true });
