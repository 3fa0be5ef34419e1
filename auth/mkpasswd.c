/*
 * mkpasswd.c - mxgate-mkpasswd: prints one line for the AUTH users file
 * (auth/store.h), "LOGIN:HASH", hashing the password read from the first
 * line of stdin (never from the command line, where ps would show it).
 *   mxgate-mkpasswd [-m yescrypt|sha512crypt] [-R rounds] LOGIN
 * yescrypt is the default, at libcrypt's default cost (-R 5, as
 * Debian's mkpasswd); sha512crypt's -R is its rounds (5000 default).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/store.h"

static int usage(void)
{
	fprintf(stderr, "usage: mxgate-mkpasswd [-m yescrypt|sha512crypt] "
			"[-R cost] LOGIN < password\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *prefix = "$y$";
	unsigned long cost = 0;
	char *line = NULL, h[AUTH_MAX_HASH];
	size_t cap = 0;
	int c;

	while ((c = getopt(argc, argv, "m:R:")) != -1) {
		if (c == 'm' && strcmp(optarg, "yescrypt") == 0)
			prefix = "$y$";
		else if (c == 'm' && strcmp(optarg, "sha512crypt") == 0)
			prefix = "$6$";
		else if (c == 'R')
			cost = strtoul(optarg, NULL, 10);
		else
			return usage();
	}
	if (optind + 1 != argc || strchr(argv[optind], ':'))
		return usage();
	ssize_t n = getline(&line, &cap, stdin);

	if (n <= 0) {
		fprintf(stderr, "mxgate-mkpasswd: no password on stdin\n");
		return 1;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = 0;
	if (n == 0 || n > AUTH_MAX_FIELD) {
		fprintf(stderr,
			"mxgate-mkpasswd: password must be 1..%d "
			"octets\n",
			AUTH_MAX_FIELD);
		return 1;
	}
	int r = auth_hash_password(prefix, cost, line, h, sizeof(h));

	memset(line, 0, (size_t)n);
	free(line);
	if (r < 0) {
		perror("mxgate-mkpasswd: crypt");
		return 1;
	}
	printf("%s:%s\n", argv[optind], h);
	return 0;
}
