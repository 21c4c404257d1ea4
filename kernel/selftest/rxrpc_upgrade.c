// SPDX-License-Identifier: GPL-2.0
/*
 * AF_RXRPC service upgrade and service-ID selftest.
 *
 * A server socket bound to two services with RXRPC_UPGRADEABLE_SERVICE must
 * upgrade a probe (a call asking for the upgrade on a new connection) to
 * the second service, answer on it and report it in recvmsg()'s msg_name;
 * a call to service B made after a call to service A from the same local
 * endpoint must be answered by B.  Connections that were not upgraded must
 * behave as they always have.  Everything runs on loopback in the current
 * network namespace: the server in a child process, the clients here.
 *
 * Usage: rxrpc_upgrade [-n PROBES] [-p PORT] [-v]
 *   -n  probes from fresh connections (default 20; 5 more carry 20000 bytes)
 *   -p  first UDP port (default 18700; the test uses PORT .. PORT+2+2*PROBES)
 *   -v  print each call's outcome
 *
 * Output is TAP.  Exit status: 0 when the kernel behaves correctly, 1 when a
 * check fails, 4 (skip) when AF_RXRPC is not available.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/rxrpc.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_RXRPC
#define AF_RXRPC 33
#endif
#ifndef SOL_RXRPC
#define SOL_RXRPC 272
#endif

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

#define SVC_FROM 52		/* AFS VL */
#define SVC_TO 2503		/* YFS VL */
#define LARGE_PROBES 5
#define LARGE_SIZE 20000
#define CALL_TIMEOUT_MS 15000
#define MAX_CALLS 64		/* server calls in flight at once */

static int verbose;
static unsigned short base_port = 18700;

static void die(const char *what)
{
	printf("Bail out! %s: %s\n", what, strerror(errno));
	exit(KSFT_FAIL);
}

static void set_addr(struct sockaddr_rxrpc *srx, unsigned short service, unsigned short port)
{
	memset(srx, 0, sizeof(*srx));
	srx->srx_family = AF_RXRPC;
	srx->srx_service = service;
	srx->transport_type = SOCK_DGRAM;
	srx->transport_len = sizeof(srx->transport.sin);
	srx->transport.sin.sin_family = AF_INET;
	srx->transport.sin.sin_port = htons(port);
	srx->transport.sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static int rxrpc_socket(void)
{
	int fd = socket(AF_RXRPC, SOCK_DGRAM, PF_INET);

	if (fd < 0 && (errno == EAFNOSUPPORT || errno == EPROTONOSUPPORT)) {
		printf("1..0 # SKIP AF_RXRPC is not available: %s\n", strerror(errno));
		exit(KSFT_SKIP);
	}
	if (fd < 0)
		die("socket(AF_RXRPC)");
	return fd;
}

/* sendmsg() with a user call ID and optional extra control messages. */
static ssize_t send_call(int fd, unsigned long id, const struct sockaddr_rxrpc *to,
			 const void *data, size_t len, int extra_type,
			 const void *extra, size_t extra_len, int flags)
{
	char control[CMSG_SPACE(sizeof(unsigned long)) + CMSG_SPACE(sizeof(uint32_t))];
	struct iovec iov = { (void *)data, len };
	struct msghdr msg = {
		.msg_name = (void *)to,
		.msg_namelen = to ? sizeof(*to) : 0,
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control,
	};
	struct cmsghdr *cmsg;

	memset(control, 0, sizeof(control));
	msg.msg_controllen = CMSG_SPACE(sizeof(id));
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_RXRPC;
	cmsg->cmsg_type = RXRPC_USER_CALL_ID;
	cmsg->cmsg_len = CMSG_LEN(sizeof(id));
	memcpy(CMSG_DATA(cmsg), &id, sizeof(id));
	if (extra_type) {
		msg.msg_controllen += CMSG_SPACE(extra_len);
		cmsg = CMSG_NXTHDR(&msg, cmsg);
		cmsg->cmsg_level = SOL_RXRPC;
		cmsg->cmsg_type = extra_type;
		cmsg->cmsg_len = CMSG_LEN(extra_len);
		if (extra_len)
			memcpy(CMSG_DATA(cmsg), extra, extra_len);
	}
	return sendmsg(fd, &msg, flags);
}

/* One recvmsg(): the call it belongs to and what it carried. */
struct message {
	unsigned long id;
	int flags;
	size_t len;
	unsigned short service;	/* msg_name's service */
	int terminal;		/* 0, or the control message that ended the call */
	int32_t code;		/* abort code or errno of a terminal message */
	unsigned char data[LARGE_SIZE + 64];
};

static int receive(int fd, struct message *m, int flags)
{
	char control[256];
	struct sockaddr_rxrpc srx;
	struct iovec iov = { m->data, sizeof(m->data) };
	struct msghdr msg = {
		.msg_name = &srx,
		.msg_namelen = sizeof(srx),
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control,
		.msg_controllen = sizeof(control),
	};
	struct cmsghdr *cmsg;
	ssize_t n;

	memset(&srx, 0, sizeof(srx));
	n = recvmsg(fd, &msg, flags);
	if (n < 0)
		return -1;
	m->id = 0;
	m->len = n;
	m->flags = msg.msg_flags;
	m->service = srx.srx_service;
	m->terminal = 0;
	m->code = 0;
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
		if (cmsg->cmsg_level != SOL_RXRPC)
			continue;
		switch (cmsg->cmsg_type) {
		case RXRPC_USER_CALL_ID:
			memcpy(&m->id, CMSG_DATA(cmsg), sizeof(m->id));
			break;
		case RXRPC_ABORT:
		case RXRPC_NET_ERROR:
		case RXRPC_LOCAL_ERROR:
			memcpy(&m->code, CMSG_DATA(cmsg), sizeof(m->code));
			/* fall through */
		case RXRPC_ACK:
		case RXRPC_BUSY:
			m->terminal = cmsg->cmsg_type;
			break;
		}
	}
	return 0;
}

/*
 * The server (child process): services SVC_FROM and SVC_TO on two sockets,
 * the first with upgrade, the second without.  Each request starts with its
 * total length (4 bytes, big-endian); the reply is the service ID the server
 * saw in recvmsg()'s msg_name (4 bytes, big-endian).
 */
struct server_call {
	unsigned long id;
	unsigned short service;
	size_t want, got;
	int replied;
};

static void charge(int fd, unsigned long *next_id)
{
	if (send_call(fd, (*next_id)++, NULL, NULL, 0, RXRPC_CHARGE_ACCEPT, NULL, 0, 0) < 0)
		die("charge accept");
}

static int make_server(unsigned short port, int upgrade, unsigned long *next_id)
{
	struct sockaddr_rxrpc srx;
	unsigned short pair[2] = { SVC_FROM, SVC_TO };
	int fd = rxrpc_socket(), i;

	set_addr(&srx, SVC_FROM, port);
	if (bind(fd, (struct sockaddr *)&srx, sizeof(srx)) < 0)
		die("bind server to the first service");
	set_addr(&srx, SVC_TO, port);
	if (bind(fd, (struct sockaddr *)&srx, sizeof(srx)) < 0)
		die("bind server to the second service");
	if (upgrade && setsockopt(fd, SOL_RXRPC, RXRPC_UPGRADEABLE_SERVICE, pair, sizeof(pair)) < 0)
		die("setsockopt RXRPC_UPGRADEABLE_SERVICE");
	if (listen(fd, 8) < 0)
		die("listen");
	for (i = 0; i < 8; i++)
		charge(fd, next_id);
	return fd;
}

static void serve(int fds[2], unsigned long next_id[2])
{
	static struct server_call calls[2][MAX_CALLS];
	static struct message m;
	struct pollfd pfd[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };
	int s, i;

	for (;;) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			die("server poll");
		}
		for (s = 0; s < 2; s++) {
			struct server_call *c = NULL, *free_slot = NULL;

			if (!(pfd[s].revents & POLLIN) || receive(fds[s], &m, MSG_DONTWAIT) < 0)
				continue;
			for (i = 0; i < MAX_CALLS; i++) {
				if (calls[s][i].id == m.id)
					c = &calls[s][i];
				else if (!calls[s][i].id && !free_slot)
					free_slot = &calls[s][i];
			}
			if (!c) {
				/* A new call: its first message. */
				if (!free_slot || m.terminal)
					continue;
				c = free_slot;
				memset(c, 0, sizeof(*c));
				c->id = m.id;
				c->service = m.service;
				charge(fds[s], &next_id[s]);
			}
			if (m.terminal) {
				c->id = 0;
				continue;
			}
			if (c->got == 0 && m.len >= 4)
				c->want = (size_t)m.data[0] << 24 | m.data[1] << 16 |
					  m.data[2] << 8 | m.data[3];
			c->got += m.len;
			if (!c->replied && c->got >= 4 && c->got >= c->want && !(m.flags & MSG_MORE)) {
				uint32_t reply = htonl(c->service);

				/* A failed reply (the call was aborted, the client is
				 * gone) ends with the call's terminal message.
				 */
				c->replied = 1;
				send_call(fds[s], c->id, NULL, &reply, sizeof(reply), 0, NULL, 0, 0);
			}
		}
	}
}

/* The outcome of one client call. */
struct outcome {
	int answered;			/* a complete reply arrived */
	unsigned short client_service;	/* the service recvmsg() named on the client */
	unsigned short server_service;	/* the service the server's recvmsg() named */
	int terminal;			/* RXRPC_ABORT, _NET_ERROR, _LOCAL_ERROR, or 0 */
	int32_t code;
	int timed_out;
	int send_errno;
};

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000;
}

/* One call from client socket fd to (service, port), waited for to its end. */
static struct outcome call(int fd, unsigned long id, unsigned short service, unsigned short port,
			   int upgrade, size_t size)
{
	static unsigned char request[LARGE_SIZE];
	static struct message m;
	struct outcome o = { 0 };
	struct sockaddr_rxrpc srx;
	size_t got = 0;
	long deadline = now_ms() + CALL_TIMEOUT_MS;

	if (size < 4)
		size = 4;
	memset(request, 'x', size);
	request[0] = size >> 24;
	request[1] = size >> 16;
	request[2] = size >> 8;
	request[3] = size;
	set_addr(&srx, service, port);
	if (send_call(fd, id, &srx, request, size, upgrade ? RXRPC_UPGRADE_SERVICE : 0,
		      NULL, 0, 0) < 0) {
		o.send_errno = errno;
		/* A call that failed in sendmsg may still end with a terminal message. */
		deadline = now_ms() + 2000;
	}
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		long left = deadline - now_ms();

		if (left <= 0) {
			uint32_t code = RX_USER_ABORT;

			o.timed_out = !o.send_errno;
			send_call(fd, id, NULL, NULL, 0, RXRPC_ABORT, &code, sizeof(code), 0);
			return o;
		}
		if (poll(&pfd, 1, left) <= 0)
			continue;
		if (receive(fd, &m, MSG_DONTWAIT) < 0 || m.id != id)
			continue;
		if (m.terminal) {
			o.terminal = m.terminal;
			o.code = m.code;
			return o;
		}
		if (m.len && got < 4) {
			size_t n = m.len < 4 - got ? m.len : 4 - got;
			int i;

			for (i = 0; i < (int)n; i++)
				o.server_service = o.server_service << 8 | m.data[i];
			o.client_service = m.service;
		}
		got += m.len;
		if (m.flags & MSG_EOR) {
			o.answered = got == 4;
			if (!o.answered)
				o.terminal = -1;
			return o;
		}
	}
}

static const char *abort_name(int32_t code)
{
	switch (code) {
	case RX_CALL_DEAD: return "RX_CALL_DEAD";
	case RX_INVALID_OPERATION: return "RX_INVALID_OPERATION";
	case RX_CALL_TIMEOUT: return "RX_CALL_TIMEOUT";
	case RX_EOF: return "RX_EOF";
	case RX_PROTOCOL_ERROR: return "RX_PROTOCOL_ERROR";
	case RX_USER_ABORT: return "RX_USER_ABORT";
	default: return "abort";
	}
}

/* Counts outcomes by kind for a one-line summary. */
struct tally {
	int total, wanted;
	int kinds;
	struct { char what[96]; int count; } kind[8];
};

static void note(struct tally *t, const char *fmt, ...)
{
	char what[96];
	va_list ap;
	int i;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	for (i = 0; i < t->kinds; i++) {
		if (!strcmp(t->kind[i].what, what)) {
			t->kind[i].count++;
			return;
		}
	}
	if (t->kinds == 8)
		i = 7;	/* the last slot takes whatever else there is */
	else
		strcpy(t->kind[t->kinds++].what, what);
	t->kind[i].count++;
}

/* "; 20 aborted with RX_PROTOCOL_ERROR (-5); 1 ..." */
static const char *others(const struct tally *t)
{
	static char buf[1024];
	size_t len = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < t->kinds && len < sizeof(buf) - 1; i++)
		len += snprintf(buf + len, sizeof(buf) - len, "; %d %s", t->kind[i].count, t->kind[i].what);
	return buf;
}

static void classify(struct tally *t, const struct outcome *o, unsigned short want)
{
	t->total++;
	if (o->answered && o->client_service == want && o->server_service == want) {
		t->wanted++;
		return;
	}
	if (o->answered)
		note(t, "answered with client's recvmsg naming %u, server's %u", o->client_service,
		     o->server_service);
	else if (o->terminal == RXRPC_ABORT)
		note(t, "aborted with %s (%d)", abort_name(o->code), o->code);
	else if (o->terminal == RXRPC_NET_ERROR || o->terminal == RXRPC_LOCAL_ERROR)
		note(t, "ended by a %s error: %s", o->terminal == RXRPC_NET_ERROR ? "network" : "local",
		     strerror(o->code));
	else if (o->timed_out)
		note(t, "not answered within %d ms", CALL_TIMEOUT_MS);
	else if (o->send_errno)
		note(t, "failed in sendmsg: %s", strerror(o->send_errno));
	else
		note(t, "answered with a malformed reply");
}

static void show(int n, const char *what, const struct outcome *o)
{
	if (!verbose)
		return;
	printf("#   %s %d: answered=%d client=%u server=%u terminal=%d code=%d timeout=%d errno=%d\n",
	       what, n, o->answered, o->client_service, o->server_service, o->terminal, o->code,
	       o->timed_out, o->send_errno);
}

/* A client socket on a local endpoint of its own, so every call on it starts afresh. */
static int client_socket(unsigned short port)
{
	struct sockaddr_rxrpc srx;
	int fd = rxrpc_socket();

	set_addr(&srx, 0, port);
	if (bind(fd, (struct sockaddr *)&srx, sizeof(srx)) < 0)
		die("bind client");
	return fd;
}

static int test_no;
static int failures;

static void report(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d - ", ok ? "" : "not ", ++test_no);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!ok)
		failures++;
}

/* count calls to SVC_FROM from fresh endpoints (so new connections); tallied against want. */
static struct tally fresh_calls(const char *name, int count, size_t size, int upgrade,
				unsigned short server_port, unsigned short want, unsigned short *next_port)
{
	struct tally t = { 0 };
	int i;

	for (i = 0; i < count; i++) {
		int fd = client_socket((*next_port)++);
		struct outcome o = call(fd, 1, SVC_FROM, server_port, upgrade, size);

		show(i, name, &o);
		classify(&t, &o, want);
		close(fd);
	}
	return t;
}

static void probes(const char *name, int count, size_t size, unsigned short *next_port,
		   unsigned short server_port)
{
	struct tally t = fresh_calls(name, count, size, 1, server_port, SVC_TO, next_port);

	report(t.wanted == t.total,
	       "%s: %d of %d probes (%zu-byte requests, each on a new connection) upgraded to %u, "
	       "named %u by recvmsg() on client and server%s",
	       name, t.wanted, t.total, size, SVC_TO, SVC_TO, others(&t));
}

int main(int argc, char **argv)
{
	int n = 20, opt, fds[2], status;
	unsigned long next_id[2] = { 1000, 1000 };
	unsigned short upgrade_port, plain_port, next_port;
	char version[128] = "none (a module without MODULE_VERSION, as Debian's)";
	struct utsname uts;
	pid_t server;
	FILE *f;

	while ((opt = getopt(argc, argv, "n:p:v")) != -1) {
		switch (opt) {
		case 'n':
			n = atoi(optarg);
			break;
		case 'p':
			base_port = atoi(optarg);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			fprintf(stderr, "usage: %s [-n PROBES] [-p PORT] [-v]\n", argv[0]);
			return KSFT_FAIL;
		}
	}
	if (n < 1 || n > 1000 || base_port < 1024 || base_port > 65535 - 2 - 2 * n - LARGE_PROBES) {
		fprintf(stderr, "%s: -n must be 1..1000 and -p leave room for the ports used\n", argv[0]);
		return KSFT_FAIL;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	upgrade_port = base_port;
	plain_port = base_port + 1;
	next_port = base_port + 2;

	close(rxrpc_socket());
	printf("TAP version 13\n1..5\n");
	uname(&uts);
	f = fopen("/sys/module/rxrpc/version", "r");
	if (f) {
		if (fgets(version, sizeof(version), f))
			version[strcspn(version, "\n")] = 0;
		fclose(f);
	}
	printf("# Linux %s; rxrpc module version: %s\n", uts.release, version);

	fds[0] = make_server(upgrade_port, 1, &next_id[0]);
	fds[1] = make_server(plain_port, 0, &next_id[1]);
	server = fork();
	if (server < 0)
		die("fork");
	if (server == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		serve(fds, next_id);
		_exit(0);
	}
	close(fds[0]);
	close(fds[1]);

	/* 1, 2: the upgrade itself, with small and with multi-packet requests. */
	probes("upgrade", n, 16, &next_port, upgrade_port);
	probes("upgrade, multi-packet request", LARGE_PROBES, LARGE_SIZE, &next_port, upgrade_port);

	/* 3: service B after service A from one endpoint, no upgrade anywhere. */
	{
		int fd = client_socket(next_port++);
		struct outcome a = call(fd, 1, SVC_FROM, plain_port, 0, 16);
		struct outcome b = call(fd, 2, SVC_TO, plain_port, 0, 16);
		struct tally t = { 0 };

		show(1, "service A", &a);
		show(2, "service B", &b);
		classify(&t, &a, SVC_FROM);
		classify(&t, &b, SVC_TO);
		report(t.wanted == 2,
		       "service ID per connection: a call to %u after a call to %u from the same "
		       "endpoint is answered by %u%s", SVC_TO, SVC_FROM, SVC_TO, others(&t));
		close(fd);
	}

	/* 4, 5: connections that are not upgraded behave as they always have. */
	{
		struct tally t = fresh_calls("no upgrade asked", 3, 16, 0, upgrade_port, SVC_FROM, &next_port);

		report(t.wanted == t.total,
		       "control: %d of %d calls to %u without the upgrade flag, to the upgrading "
		       "server, answered by %u%s", t.wanted, t.total, SVC_FROM, SVC_FROM, others(&t));
		t = fresh_calls("no upgrade offered", 3, 16, 1, plain_port, SVC_FROM, &next_port);
		report(t.wanted == t.total,
		       "control: %d of %d probes to a server without upgrade answered by %u%s",
		       t.wanted, t.total, SVC_FROM, others(&t));
	}

	kill(server, SIGKILL);
	waitpid(server, &status, 0);
	if (failures)
		printf("# FAIL: %d of %d checks failed\n", failures, test_no);
	else
		printf("# PASS: all %d checks passed\n", test_no);
	return failures ? KSFT_FAIL : KSFT_PASS;
}
