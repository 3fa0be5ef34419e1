/*
 * cidr.h - parsing and printing of IPv4/IPv6 CIDR blocks as operators type
 * them ("192.0.2.0/24", "2001:db8::/32", a bare address = one host), shared
 * by mxgatectl (to reject bad arguments before connecting) and the admin
 * handlers that push ACL entries (DESIGN section 6).
 *
 * Threads: pure functions, any thread. Never allocates.
 */
#ifndef MXG_CONTROL_CIDR_H
#define MXG_CONTROL_CIDR_H

#include <stddef.h>
#include <stdint.h>

struct ctl_cidr {
	int family;	    /* AF_INET or AF_INET6 */
	uint8_t addr[16];   /* network order; IPv4 uses the first 4 */
	uint8_t prefix_len; /* 0..32 or 0..128 */
};

/* Parses s into *out. A prefix with host bits set ("10.1.2.3/8") is
 * refused, since it is most often a typo: the message suggests the
 * network. Returns 0, or -EINVAL with a one-line reason (no trailing
 * newline, not naming s) in err[0..errlen) when err is not NULL. */
int ctl_cidr_parse(const char *s, struct ctl_cidr *out, char *err,
		   size_t errlen);

/* Writes c as "addr/len" into buf. Returns the length, or -ENOSPC. A
 * buffer of CTL_CIDR_STRLEN always suffices. */
#define CTL_CIDR_STRLEN 50
int ctl_cidr_format(const struct ctl_cidr *c, char *buf, size_t len);

#endif /* MXG_CONTROL_CIDR_H */
