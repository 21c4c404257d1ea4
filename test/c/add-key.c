/*
 * add-key TYPE DESCRIPTION < PAYLOAD: adds a key to the caller's user session
 * keyring (add_key(2), KEY_SPEC_USER_SESSION_KEYRING) and prints its serial.
 * test/integration/kafs.test.ts gives kafs the answer of a DNS lookup this
 * way: the dns_resolver's own searches reach root's user session keyring.
 */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KEY_SPEC_USER_SESSION_KEYRING -5

int main(int argc, char **argv)
{
	static char payload[4096];
	size_t n;
	long key;

	if (argc != 3) {
		fprintf(stderr, "usage: add-key TYPE DESCRIPTION < PAYLOAD\n");
		return 2;
	}
	n = fread(payload, 1, sizeof(payload), stdin);
	key = syscall(SYS_add_key, argv[1], argv[2], payload, n, KEY_SPEC_USER_SESSION_KEYRING);
	if (key < 0) {
		perror("add_key");
		return 1;
	}
	printf("%ld\n", key);
	return 0;
}
