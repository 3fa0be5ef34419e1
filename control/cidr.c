/*
 * cidr.c - CIDR blocks as operators type them (contract in cidr.h).
 * Threads: pure, any thread. Never allocates.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "control/cidr.h"

static void set_err(char *err, size_t errlen, const char *msg)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s", msg);
}

int ctl_cidr_format(const struct ctl_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	int n;

	if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
		return -EINVAL;
	n = snprintf(buf, len, "%s/%u", a, c->prefix_len);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

int ctl_cidr_parse(const char *s, struct ctl_cidr *out, char *err,
		   size_t errlen)
{
	char addr[INET6_ADDRSTRLEN + 1], msg[128], net[CTL_CIDR_STRLEN];
	const char *slash = strchr(s, '/');
	size_t alen = slash != NULL ? (size_t)(slash - s) : strlen(s);
	unsigned max, plen, i;
	struct ctl_cidr c;
	bool host_bits = false;

	memset(&c, 0, sizeof(c));
	if (alen == 0 || alen >= sizeof(addr)) {
		set_err(err, errlen,
			"not an address (want a.b.c.d/len or x:y::/len)");
		return -EINVAL;
	}
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		set_err(err, errlen,
			"not an address (want a.b.c.d/len or x:y::/len)");
		return -EINVAL;
	}
	plen = max;
	if (slash != NULL) {
		const char *p = slash + 1;

		if (*p == '\0' || strlen(p) > 3) {
			snprintf(msg, sizeof(msg),
				 "bad prefix length (want 0..%u)", max);
			set_err(err, errlen, msg);
			return -EINVAL;
		}
		plen = 0;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9') {
				snprintf(msg, sizeof(msg),
					 "bad prefix length (want 0..%u)", max);
				set_err(err, errlen, msg);
				return -EINVAL;
			}
			plen = plen * 10 + (unsigned)(*p - '0');
		}
		if (plen > max) {
			snprintf(msg, sizeof(msg),
				 "prefix length %u too long (want 0..%u)", plen,
				 max);
			set_err(err, errlen, msg);
			return -EINVAL;
		}
	}
	c.prefix_len = (uint8_t)plen;
	for (i = 0; i < max / 8; i++) {
		unsigned keep = plen >= (i + 1) * 8 ? 8
				: plen > i * 8	    ? plen - i * 8
						    : 0;
		uint8_t mask = (uint8_t)(0xff00u >> keep);

		if (c.addr[i] & ~mask) {
			host_bits = true;
			c.addr[i] &= mask;
		}
	}
	if (host_bits) {
		ctl_cidr_format(&c, net, sizeof(net));
		snprintf(msg, sizeof(msg),
			 "host bits set after the prefix (did you mean %s?)",
			 net);
		set_err(err, errlen, msg);
		return -EINVAL;
	}
	*out = c;
	return 0;
}
